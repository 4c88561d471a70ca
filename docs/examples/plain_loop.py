"""LADD in a plain PyTorch loop: a labeler, dense labels and a student, on the offline shapes."""

import torch

import ladd
from ladd.data import load_source

torch.manual_seed(0)
real = load_source("shapes", "train", limit_per_class=100)  # 1,000 real images (32 px)
test = load_source("shapes", "test", limit_per_class=20)
x, y, x_test = real.normalised(), real.labels, test.normalised()  # one input space for all
labeler = ladd.fit_labeler(x, y, recipe="strong", epochs=5, batch_size=32, lr=0.02, width=16)
pick = torch.cat([torch.nonzero(y == c)[:10, 0] for c in range(10)])
images, labels = x[pick], y[pick]  # the "distilled" set: 10 real images per class
dense = ladd.dense_labels(labeler, images, n=3, r=0.625)  # (100, 9, 10): one label per crop
student = ladd.create_model("convnet_d3", num_classes=10, image_size=32, width=16)
opt = torch.optim.SGD(student.parameters(), lr=0.03, momentum=0.9, weight_decay=5e-4)
criterion, augment = ladd.LADDLoss(), ladd.DSA(generator=0)
for _ in range(15):
    for i in torch.randperm(100).split(25):
        crops = ladd.sub_sample(images[i], n=3, r=0.625).flatten(0, 1)  # (25 * 9, 3, 32, 32)
        out = criterion(student(augment(images[i])), labels[i], student(augment(crops)), dense[i])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
with torch.no_grad():
    accuracy = (student.eval()(x_test).argmax(1) == test.labels).float().mean().item()
print(f"LADD student: {accuracy:.1%} on {len(test.labels)} test images (chance 10%)")
