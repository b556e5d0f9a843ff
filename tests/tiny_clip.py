"""Tiny random CLIP and SigLIP model directories, built offline, loadable like any Hub download.

Each directory holds what ``save_pretrained`` writes for a real checkpoint (config, weights,
tokenizer, processor), so tests load it through the same path users take:
``load_encoder(str(path))``. Weights are random but seeded, so vectors are reproducible.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Short sentences are enough for a byte-level BPE: every byte is in the alphabet, so any text encodes.
_SENTENCES = [
    "a red picture of a ship at sea",
    "a blue map of london with streets",
    "portrait of a man in a hat",
    "engraving of a cathedral and a bridge",
    "botanical drawing of flowers and leaves",
]
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _tokenizer(max_length: int, *, add_bos: bool = True):  # -> PreTrainedTokenizerFast
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=_EOS))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=[_BOS, _EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_SENTENCES, trainer)
    bos, eos = tok.token_to_id(_BOS), tok.token_to_id(_EOS)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{_BOS} $A {_EOS}", special_tokens=[(_BOS, bos), (_EOS, eos)]
        )
    else:
        tok.post_processor = processors.TemplateProcessing(single=f"$A {_EOS}", special_tokens=[(_EOS, eos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=_BOS,
        eos_token=_EOS,
        pad_token=_EOS,
        unk_token=_EOS,
        model_max_length=max_length,
    )


def _quiet_transformers() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


# Both towers of both tiny models: two layers of width 32, enough to exercise every code path.
_TINY_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}


def build_tiny_clip(path: Path, *, seed: int = 0, projection_dim: int = 16) -> Path:
    """Write a tiny random CLIP (ViT, 32 px input, 8 px patches) with tokenizer and processor."""
    import torch

    _quiet_transformers()  # before the import: it is what warns about the missing torchvision
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(max_length=16)
    bos, eos = tokenizer.convert_tokens_to_ids([_BOS, _EOS])
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            **_TINY_TOWER,
            "max_position_embeddings": 16,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config=dict(_TINY_TOWER, image_size=32, patch_size=8),
        projection_dim=projection_dim,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(path)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def build_tiny_siglip(path: Path, *, seed: int = 0) -> Path:
    """Write a tiny random SigLIP (sigmoid-loss CLIP variant: fixed-size resize, last-token text pooling)."""
    import torch

    _quiet_transformers()  # before the import: it is what warns about the missing torchvision
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(max_length=16, add_bos=False)
    eos = tokenizer.convert_tokens_to_ids(_EOS)
    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            **_TINY_TOWER,
            "max_position_embeddings": 16,
            "bos_token_id": eos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config=dict(_TINY_TOWER, image_size=32, patch_size=8),
    )
    torch.manual_seed(seed)
    SiglipModel(config).save_pretrained(path)
    image_processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    SiglipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture(scope="session")
def tiny_clip_dir_wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same architecture with a wider projection: another model of another dimension."""
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip-wide"), seed=1, projection_dim=24)


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))
