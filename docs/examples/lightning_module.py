"""LADD in a Lightning `training_step`: batches of images with their crops' dense labels.

The DataLoader yields (image, label, dense) per distilled image; the step cuts the crops on the
GPU (or CPU) with `ladd.sub_sample` and returns the LADD loss, logging its two parts.
"""

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import ladd
from ladd.data import load_source


class LADDStudent(L.LightningModule):
    def __init__(self, n: int = 3, r: float = 0.625) -> None:
        super().__init__()
        self.model = ladd.create_model("convnet_d3", num_classes=10, image_size=32, width=8)
        self.criterion, self.augment, self.n, self.r = ladd.LADDLoss(), ladd.DSA(), n, r

    def training_step(self, batch, batch_idx):
        images, labels, dense = batch  # (B, 3, H, W), (B,), (B, N*N, K)
        crops = ladd.sub_sample(images, self.n, self.r).flatten(0, 1)  # (B * N*N, 3, H, W)
        out = self.criterion(
            self.model(self.augment(images)), labels, self.model(self.augment(crops)), dense
        )
        self.log_dict({"loss/hard": out.hard, "loss/soft": out.soft})
        return out.loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


real = load_source("shapes", "train", limit_per_class=10)
images, labels = real.normalised(), real.labels
labeler = ladd.fit_labeler(images, labels, recipe="strong", epochs=1, batch_size=32, width=8)
dense = ladd.dense_labels(labeler, images, n=3, r=0.625)
loader = DataLoader(TensorDataset(images, labels, dense), batch_size=25, shuffle=True)
trainer = L.Trainer(
    max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
    enable_progress_bar=False, enable_model_summary=False,
)  # fmt: skip
trainer.fit(LADDStudent(), loader)
print(f"trained {trainer.global_step} steps")
