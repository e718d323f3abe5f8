"""This institution's training data: the configured slice of the task's train split, or its own CSV table.

The Byzantine `label_flip` behaviour poisons the data here, before training, exactly as a compromised
institution would."""
from __future__ import annotations

from peer.config import DataConfig
from peer.learning.tasks import Task, TaskData


def load_training_data(data: DataConfig, task: Task, adversary=None) -> TaskData:
    from peer.learning.partition import dirichlet_partition, iid_partition

    if data.partition == "csv":
        from peer.learning.tasks import CsvTask

        csv_task = task if isinstance(task, CsvTask) else CsvTask(data.csv_path, data.label)
        local = csv_task.train_data
    else:
        train = task.train_data
        if data.partition == "full":
            local = train
        elif data.partition == "iid":
            local = train.subset(iid_partition(len(train), data.num_partitions, data.seed)[data.partition_index])
        else:
            parts = dirichlet_partition(train.labels, data.num_partitions, data.alpha, data.seed)
            local = train.subset(parts[data.partition_index])
    if adversary is not None and adversary.poisons_data:
        local = adversary.poison_data(local, task.num_classes)
    return local
