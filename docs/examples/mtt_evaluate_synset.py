"""MTT/DATM's evaluation with LADD: their loop unchanged but for the training set it is given.

MTT's `evaluate_synset(it_eval, net, images_train, labels_train, testloader, args)` trains on a
TensorDataset of `images_train, labels_train` with `nn.CrossEntropyLoss()`, which takes
probability rows as targets too. LADD hands it the flat set `ladd.expand` builds (full images
with one-hot rows, then every crop with its dense label). `train_like_evaluate_synset` below is
a short stand-in with the same structure (our code, not theirs), at a CPU size.
"""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import ladd
from ladd.data import load_source


def train_like_evaluate_synset(net, images_train, labels_train, epochs=4, lr=0.01):
    """SGD momentum 0.9, wd 5e-4, lr x 0.1 after epoch // 2 + 1, DSA on every batch."""
    criterion = nn.CrossEntropyLoss()  # probability targets work as they are
    loader = DataLoader(TensorDataset(images_train, labels_train), batch_size=256, shuffle=True)
    augment = ladd.DSA(generator=0)
    for ep in range(epochs + 1):
        if ep == epochs // 2 + 1:
            lr *= 0.1
        opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
        for img, lab in loader:
            # MTT's epoch() reads `lab = datum[1].long()`: keep soft rows as floats instead
            lab = lab.long() if lab.dim() == 1 else lab.float()
            loss = criterion(net(augment(img)), lab)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


real = load_source("shapes", "train", limit_per_class=20)
image_syn, label_syn = real.normalised(), real.labels  # stand-ins for the distilled set
labeler = ladd.fit_labeler(image_syn, label_syn, recipe="strong", epochs=1, batch_size=32, width=8)
dense = ladd.dense_labels(labeler, image_syn, n=3, r=0.625)
images_train, labels_train = ladd.expand(image_syn, label_syn, dense, n=3, r=0.625)
net = ladd.create_model("convnet_d3", num_classes=10, image_size=32, width=8)
train_like_evaluate_synset(net, images_train, labels_train)
print(f"trained on {len(images_train)} samples: {len(image_syn)} images + their crops")
