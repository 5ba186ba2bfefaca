"""PyTorch scenarios: plain training loops (no Lightning, no TensorBoard), on the CPU.

- an MLP (20 -> 64 -> 64 -> 1, Adam, MSE) on 20,000 x 20 for 5 epochs, batch 64 (1,565 steps);
- a small CNN (two conv layers, 10 classes, SGD with momentum, cross-entropy) on 2,048 random
  1 x 28 x 28 images for 2 epochs, batch 64 (64 steps).

Each run() builds a fresh model and optimizer (a new training, so a new run under autolog) and
trains it. Imports only torch (the same file runs under MLflow's autolog, which records nothing
for a plain loop without TensorBoard).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# The budget: full logging adds under 3% to these trainings.
BUDGETS = {
    "mlp_20000x20_5epochs": {"max_ratio": 1.03},
    "cnn_random_images": {"max_ratio": 1.03},
}


def mlp_20000x20_5epochs(small: bool) -> Callable[[], object]:
    """MLP 20-64-64-1 with Adam on 20,000 x 20 (512 x 20, 1 epoch small), batch 64."""
    rows, epochs = (512, 1) if small else (20_000, 5)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(rows, 20, generator=g)
    y = X @ torch.randn(20, 1, generator=g) + 0.1 * torch.randn(rows, 1, generator=g)
    loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True, generator=g)

    def run() -> object:
        model = nn.Sequential(
            nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.MSELoss()
        for _ in range(epochs):
            for xb, yb in loader:
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return model

    return run


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(16 * 7 * 7, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


def cnn_random_images(small: bool) -> Callable[[], object]:
    """Two-conv CNN, SGD(momentum) on 2,048 random 1x28x28 images (128 small), 2 epochs, batch 64."""
    n, epochs = (128, 1) if small else (2048, 2)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True, generator=g)

    def run() -> object:
        model = SmallCNN(classes=10)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        for _ in range(epochs):
            for xb, yb in loader:
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return model

    return run


SCENARIOS: dict[str, Callable[[bool], Callable[[], object]]] = {
    "mlp_20000x20_5epochs": mlp_20000x20_5epochs,
    "cnn_random_images": cnn_random_images,
}
