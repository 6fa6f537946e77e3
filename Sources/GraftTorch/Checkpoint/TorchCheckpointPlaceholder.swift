// Stands in for the `TorchCheckpoint` enum that TorchCheckpoint.swift (the `.pth` reader)
// declares, so that the writer builds on its own; delete this file when the two meet.
public enum TorchCheckpoint {}
