"""ember.nn: layers, losses and the Module base class, named and initialised as PyTorch's.

Conv2d and the pooling layers run forward and backward on ember's C++ kernels (ember.ops).
LSTMCell and LSTM run each layer on ember's fused LSTM kernels; MultiheadAttention (and so
TransformerEncoderLayer) on ember's GEMM and fused attention kernels.
"""

from ember.nn import functional, init, utils
from ember.nn.activation import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from ember.nn.attention import MultiheadAttention
from ember.nn.container import ModuleList, Sequential
from ember.nn.conv import Conv2d
from ember.nn.distance import CosineSimilarity
from ember.nn.dropout import Dropout
from ember.nn.linear import Flatten, Identity, Linear
from ember.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, KLDivLoss, MSELoss, NLLLoss
from ember.nn.module import Module, Parameter
from ember.nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from ember.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from ember.nn.rnn import LSTM, LSTMCell
from ember.nn.sparse import Embedding
from ember.nn.transformer import TransformerEncoder, TransformerEncoderLayer

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CosineSimilarity",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "Flatten",
    "GELU",
    "Identity",
    "KLDivLoss",
    "LSTM",
    "LSTMCell",
    "LayerNorm",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleList",
    "MultiheadAttention",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "functional",
    "init",
    "utils",
]
