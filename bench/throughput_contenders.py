"""The two contenders bench/throughput.py times beside vaekit: the pytorch/examples VAE loop and
pythae 0.1.2, with the same networks (784-400-20 MLP, Bernoulli, batch 128, Adam 1e-3)."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BATCH, LR, HIDDEN, LATENT, D = 128, 1e-3, 400, 20, 784


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that a wall-clock time covers it (nothing to wait for on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


# --- (a) the pytorch/examples loop -------------------------------------------------------------
class ExampleVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(D, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, D)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, D)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def example_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, D), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def mnist_root(data_dir: Path, tmp: Path) -> Path:
    """torchvision wants MNIST/raw/ decompressed: copy the .gz files and decompress in a temp dir."""
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for gz in (data_dir / "MNIST" / "raw").glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.name[:-3], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return tmp


def run_reference(root: Path, device: torch.device) -> float:
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor()),
        batch_size=BATCH, shuffle=True)
    model = ExampleVAE().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    t, n = time.perf_counter(), 0
    for x, _ in loader:
        x = x.to(device)  # as the example does with --accel
        opt.zero_grad()
        recon, mu, logvar = model(x)
        loss = example_loss(recon, x, mu, logvar)
        loss.backward()
        opt.step()
        n += x.shape[0]
    sync(device)
    return n / (time.perf_counter() - t)


# --- (b) pythae 0.1.2 ------------------------------------------------------------------------
def run_pythae(x: torch.Tensor, out_dir: Path, device: torch.device, epochs: int = 1) -> float:
    """samples/s of pythae's epoch loop in its last of ``epochs`` epochs (pythae has no matmul precision
    setting of its own: main() sets torch's around the call for the medium row)."""
    from pythae.data.preprocessors import DataProcessor
    from pythae.models import VAE as PVAE
    from pythae.models import VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    class Enc(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(D, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = F.relu(self.fc1(x.reshape(-1, D)))
            return ModelOutput(embedding=self.fc21(h), log_covariance=self.fc22(h))

    class Dec(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, D)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.fc4(F.relu(self.fc3(z)))).reshape(-1, 1, 28, 28))

    torch.manual_seed(0)
    model = PVAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"), encoder=Enc(), decoder=Dec())
    dataset = DataProcessor.to_dataset(DataProcessor().process_data(x))
    cfg = BaseTrainerConfig(output_dir=str(out_dir), num_epochs=1, learning_rate=LR, per_device_train_batch_size=BATCH,
                            no_cuda=device.type != "cuda", optimizer_cls="Adam")
    trainer = BaseTrainer(model, dataset, training_config=cfg)
    trainer.prepare_training()  # what train() does first: optimiser, callbacks, output folder
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        trainer.train_step(epoch)  # the epoch loop only: no eval, no saving
        sync(device)
        seconds = time.perf_counter() - t
    return len(dataset) / seconds
