"""Explanation penalties for training (PyTorch): CDEP and the gradient penalty.

``loss = F.cross_entropy(model(x), y) + lam * cdep_penalty(model, x, mask)``
teaches a network to ignore the masked region (Rieger et al., ICML 2020);
``gradient_penalty`` is Ross et al.'s "Right for the Right Reasons" term.
"""

from .penalties import cdep_penalty, gradient_penalty

__all__ = ["cdep_penalty", "gradient_penalty"]
