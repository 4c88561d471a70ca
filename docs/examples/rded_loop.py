"""An RDED/SRe2L-style validation loop: a DataLoader over the samples, a KL loss, AdamW.

RDED and SRe2L train the student on a DataLoader of (image, soft label) pairs with
KL(teacher || student) at a temperature. With LADD the soft labels are fixed data: the dataset
yields every full image (one-hot target) and every crop (its dense label), cut when drawn.
"""

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import ladd
from ladd.data import load_source

real = load_source("shapes", "train", limit_per_class=20)
images, labels = real.normalised(), real.labels
labeler = ladd.fit_labeler(images, labels, recipe="strong", epochs=1, batch_size=32, width=8)
dense = ladd.dense_labels(labeler, images, n=3, r=0.625, codec=ladd.DEFAULT_CODEC)  # compact
dataset = ladd.LabelAugmentedDataset(images, labels, dense, n=3, r=0.625)
loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=0)
student = ladd.create_model("convnet_d3", num_classes=10, image_size=32, width=8)
opt = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.01)
temperature = 1.0  # the dense labels are the labeler's softmax at T = 1
for _ in range(2):
    for x, target in loader:
        log_p = F.log_softmax(student(x) / temperature, dim=1)
        loss = F.kl_div(log_p, target, reduction="batchmean") * temperature**2
        opt.zero_grad()
        loss.backward()
        opt.step()
print(f"{len(dataset)} samples a pass; last KL {loss.item():.3f}")
