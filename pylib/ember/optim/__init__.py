"""ember.optim: SGD, Adam and AdamW with PyTorch's update formulas and parameter groups, and
learning-rate schedules in `ember.optim.lr_scheduler`."""

from ember.optim import lr_scheduler
from ember.optim.adam import Adam, AdamW
from ember.optim.optimizer import Optimizer
from ember.optim.sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
