"""ember.nn: layers, losses and the Module base class, named and initialised as PyTorch's.

Convolution, pooling, LSTM and attention layers (Conv2d, MaxPool2d, AvgPool2d,
AdaptiveAvgPool2d, LSTMCell, LSTM, MultiheadAttention, TransformerEncoderLayer) are added
with their C++ kernels in ember.ops.
"""

from ember.nn import functional, init, utils
from ember.nn.activation import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from ember.nn.container import ModuleList, Sequential
from ember.nn.dropout import Dropout
from ember.nn.linear import Flatten, Identity, Linear
from ember.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, MSELoss, NLLLoss
from ember.nn.module import Module, Parameter
from ember.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from ember.nn.sparse import Embedding

__all__ = [
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GELU",
    "Identity",
    "KLDivLoss",
    "LayerNorm",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
    "utils",
]
