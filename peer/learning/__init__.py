"""Local learning: tasks (data + model), training (FedAvg/FedProx, DP-SGD), privacy accounting, data partitions."""
