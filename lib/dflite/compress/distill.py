"""Knowledge distillation for a single-logit detector, through the engine's loss hook.

    L = alpha * T^2 * BCE_with_logits(student / T, sigmoid(teacher / T)) + (1 - alpha) * BCE(student, y)

The soft term is Hinton et al.'s temperature-softened cross-entropy written for one logit: the
teacher's softened fake-probability is the target of the student's softened logit. T^2 keeps the
soft term's gradient on the scale of the hard term's as T grows. alpha = 0 is the plain loss (the
engine's own criterion, with its class weighting); alpha = 1 learns from the teacher alone.
The teacher is frozen (no gradients, eval mode: its batch norm and dropout do not move) and sees
the same augmented batch as the student, resized when it was trained at another input size.
"""
from __future__ import annotations

import torch
from torch import nn


def soft_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * BCE_with_logits(student / T, sigmoid(teacher / T)), averaged over the batch."""
    target = torch.sigmoid(teacher_logits.detach() / temperature)
    return temperature ** 2 * nn.functional.binary_cross_entropy_with_logits(student_logits / temperature, target)


class Distiller:
    """The loss hook: mixes the teacher's soft targets into the student's loss."""

    def __init__(self, teacher: nn.Module, alpha: float, temperature: float = 4.0):
        if not 0 <= alpha <= 1:
            raise ValueError(f"distillation alpha must be in [0, 1], got {alpha}")
        if temperature <= 0:
            raise ValueError(f"distillation temperature must be > 0, got {temperature}")
        self.teacher, self.alpha, self.temperature = teacher.eval(), float(alpha), float(temperature)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.size = getattr(teacher, "dflite_spec", {}).get("input_size")

    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        first = next(self.teacher.parameters())
        if first.device != inputs.device:  # the engine moves the student; the teacher follows once
            self.teacher.to(inputs.device).to(memory_format=torch.channels_last)
        self.teacher.eval()  # stays frozen even if a caller set everything to train mode
        if self.size and inputs.shape[-1] != self.size:
            inputs = nn.functional.interpolate(inputs, size=(self.size, self.size), mode="bilinear",
                                               align_corners=False, antialias=True)
        with torch.no_grad():
            return self.teacher(inputs).float().squeeze(1)

    def __call__(self, logits, targets, inputs, criterion) -> torch.Tensor:
        hard = criterion(logits, targets)
        if self.alpha == 0:
            return hard  # the plain loss, and no teacher pass to pay for
        soft = soft_loss(logits, self.teacher_logits(inputs), self.temperature)
        return self.alpha * soft + (1 - self.alpha) * hard

