"""vaekit: train, measure and use variational autoencoders."""

__version__ = "0.1.0"

from .checkpoint import load
from .config import Config, DataConfig, ModelConfig, TrainingConfig, apply_overrides, load_config_file
from .distributions import Bernoulli, DiagonalGaussian, Gaussian
from .errors import ChecksumError, ConfigError, DataError, RunError, TrainingError, VaekitError
from .diagnostics import latent_diagnostics
from .evaluation import elbo_breakdown, likelihood_report, log_likelihood, posterior_means
from .latent import interpolate, reconstruct, slerp, traverse
from .models import VAE, VAEOutput
from .objectives import beta_at, elbo_loss, iwae_bound, iwae_loss, log_importance_weights
from .runs import evaluate_run, make_pictures, resume_run, run_data, train_run
from .training import train
from .sweep import sweep
from .anomaly import VAEAnomalyDetector
from .embedding import VAETransformer
from .impute import denoise, impute
from .tabular import TabularVAE

__all__ = [
    "__version__", "VAEAnomalyDetector", "VAETransformer", "impute", "denoise", "TabularVAE",
    "load", "train", "train_run", "resume_run", "run_data", "evaluate_run", "make_pictures",
    "Config", "ModelConfig", "DataConfig", "TrainingConfig", "apply_overrides", "load_config_file",
    "DiagonalGaussian", "Bernoulli", "Gaussian", "VAE", "VAEOutput",
    "elbo_loss", "iwae_loss", "iwae_bound", "log_importance_weights", "beta_at",
    "elbo_breakdown", "log_likelihood", "likelihood_report", "latent_diagnostics", "posterior_means", "sweep",
    "reconstruct", "interpolate", "slerp", "traverse",
    "VaekitError", "ConfigError", "DataError", "ChecksumError", "RunError", "TrainingError",
]
