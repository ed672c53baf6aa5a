"""Quantized-CNN evaluator: ResNet-18 / CIFAR-10 with weights programmed onto device levels.

model (architecture, checkpoint, BN folding) · data (CIFAR-10) · levels_map (levels → weight grid,
snap) · observers (min-max / MSE / percentile, per tensor or channel) · quantize (PTQ of a model) ·
evaluate (the accuracy grid, CTC Monte Carlo, tables, plot) · train (the baseline's recipe).
"""
from labspin.quant.evaluate import evaluate_levels, paper_table, write_report
from labspin.quant.levels_map import DeviceLevels, levels_from_table, uniform_levels
from labspin.quant.model import fold_bn, load_model, resnet18_cifar
from labspin.quant.observers import make_observer
from labspin.quant.quantize import quantize_weights
from labspin.quant.train import train

__all__ = ["evaluate_levels", "paper_table", "write_report", "DeviceLevels", "levels_from_table",
           "uniform_levels", "fold_bn", "load_model", "resnet18_cifar", "make_observer",
           "quantize_weights", "train"]
