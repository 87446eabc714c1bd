"""The training loop end to end on a tiny random encoder: it selects epochs by the served score."""

import json
import shutil

import pytest
import torch
from transformers import AutoModelForTokenClassification

from training import standins
from training.align import LABELS
from training.data import load_jsonl
from training.evaluate import evaluate, pipeline_predictor
from training.train import Recipe, resolve, train

SENTENCES = [
    ("鈴木は熊本県に住む", [("鈴木", 0, "人名"), ("熊本県", 3, "地名")]),
    ("田中は大阪府で働く", [("田中", 0, "人名"), ("大阪府", 3, "地名")]),
    ("トヨタ自動車の本社は愛知県にある", [("トヨタ自動車", 0, "法人名"), ("愛知県", 10, "地名")]),
]

CURIDS = range(15, 24)  # 19 and 22 are in the held-out test bucket: training must skip those two sentences


def _write_split(path):
    with path.open("w", encoding="utf-8") as fh:
        for i, (text, ents) in enumerate(SENTENCES * 3):
            entities = [{"name": n, "span": [s, s + len(n)], "type": t} for n, s, t in ents]
            record = {"curid": str(CURIDS[i]), "text": text, "entities": entities}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def test_one_epoch_writes_a_model_scored_as_served(tmp_path):
    split = _write_split(tmp_path / "split.jsonl")
    out = tmp_path / "model"
    recipe = Recipe(epochs=2, batch_size=4, threads=1)
    summary = train(
        standins.build(tmp_path / "base", standins.TINY_ENCODER), out, recipe, split, split, keep_epochs=True
    )

    model = AutoModelForTokenClassification.from_pretrained(out)
    assert [model.config.id2label[i] for i in range(len(LABELS))] == list(LABELS)
    assert next(model.parameters()).dtype == torch.float32  # stored fp16, read back as fp32
    # the recorded score is the served pipeline's score of the very folder written
    served, _, _ = evaluate(load_jsonl(split), pipeline_predictor(out, threads=1))
    assert summary["best_dev_micro_f1"] == round(served.micro.f1, 4)
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    assert summary["train_sentences"] == len(SENTENCES) * 3 - 2  # the test split never reaches training
    assert summary["test_split_excluded"] is True
    assert all("dev_raw_argmax_f1" in h for h in summary["history"])
    assert json.loads((out / "training_summary.json").read_text())["best_epoch"] == summary["best_epoch"]
    assert not list(tmp_path.glob(".model.last-epoch"))  # the per-epoch scratch folder is removed
    assert sorted(p.name for p in tmp_path.glob("model-epoch*")) == ["model-epoch1", "model-epoch2"]


def test_average_of_checkpoints_is_their_elementwise_mean(tmp_path):
    from training.average import average

    base = standins.build(tmp_path / "base", standins.TINY_ENCODER)
    split = _write_split(tmp_path / "split.jsonl")
    recipe = Recipe(epochs=2, batch_size=4, threads=1, lr=1e-3, augment=3)
    summary = train(base, tmp_path / "m", recipe, split, split, keep_epochs=True)
    assert summary["train_sentences"] == len(SENTENCES) * 3 - 2 + 3  # --augment 3: three boundary-augmented copies
    assert summary["recipe"]["augment"] == 3
    a, b = (tmp_path / f"m-epoch{i}" for i in (1, 2))
    average([a, b], tmp_path / "avg")
    averaged = json.loads((tmp_path / "avg" / "training_summary.json").read_text())
    assert averaged["test_split_excluded"] is True and averaged["dev_trained_on"] is False
    assert [stage["recipe"]["augment"] for stage in averaged["stages"]] == [3, 3]
    unknown = shutil.copytree(a, tmp_path / "no-provenance")
    (unknown / "training_summary.json").unlink()
    average([a, unknown], tmp_path / "avg-unknown")  # a member with no provenance: not held out
    assert json.loads((tmp_path / "avg-unknown" / "training_summary.json").read_text())["test_split_excluded"] is False
    load = AutoModelForTokenClassification.from_pretrained
    wa, wb, wm = (load(d).classifier.weight for d in (a, b, tmp_path / "avg"))
    assert not torch.equal(wa, wb)
    assert torch.allclose(wm, ((wa + wb) / 2).half().float(), atol=1e-3)


def test_with_dev_trains_on_dev_too_and_keeps_the_last_epoch(tmp_path):
    split = _write_split(tmp_path / "split.jsonl")
    dev = tmp_path / "dev.jsonl"
    dev.write_text(split.read_text().splitlines(keepends=True)[0])  # one dev sentence (curid 15: not test)
    recipe = Recipe(epochs=3, batch_size=4, threads=1, lr=1e-3, with_dev=True)
    summary = train(standins.build(tmp_path / "base", standins.TINY_ENCODER), tmp_path / "m", recipe, split, dev)
    assert summary["train_sentences"] == len(SENTENCES) * 3 - 2 + 1
    assert summary["best_epoch"] == 3  # dev was seen: it chooses nothing
    assert summary["recipe"]["with_dev"] is True
    assert summary["test_split_excluded"] is True
    assert summary["dev_trained_on"] is True
    from training.average import average
    from training.scorecard import dev_held_out

    average([tmp_path / "m", tmp_path / "m"], tmp_path / "avg")
    assert dev_held_out(tmp_path / "m") is False and dev_held_out(tmp_path / "avg") is False


@pytest.mark.parametrize(
    ("flags", "asked", "bf16"),
    [
        (frozenset({"avx2"}), "auto", "false"),
        (frozenset({"avx2", "avx512_bf16"}), "auto", "true"),
        (frozenset({"avx2", "amx_bf16"}), "false", "false"),
        (frozenset({"avx2"}), "true", "true"),
    ],
)
def test_threads_and_bf16_follow_the_machine_unless_set(flags, asked, bf16):
    from ja_ner.hardware import Hardware

    hw = Hardware(cores=6, cpu_flags=flags)
    resolved = resolve(Recipe(bf16=asked), hw)
    assert (resolved.threads, resolved.bf16) == (6, bf16)
    assert resolve(Recipe(threads=3), hw).threads == 3
    with pytest.raises(ValueError, match="auto, true or false"):
        resolve(Recipe(bf16="yes"), hw)


def test_layerwise_lr_decay_scales_each_layer_and_keeps_the_head(tmp_path):
    from training.train import param_groups

    model = AutoModelForTokenClassification.from_pretrained(
        standins.build(tmp_path / "base", standins.TINY_ENCODER), num_labels=len(LABELS)
    )
    layers = model.config.num_hidden_layers
    lr_of = {id(p): g["lr"] for g in param_groups(model, Recipe(lr=1.0, llrd=0.5)) for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["classifier.weight"])] == 1.0
    assert lr_of[id(named[f"bert.encoder.layer.{layers - 1}.output.dense.weight"])] == 0.5
    assert lr_of[id(named["bert.embeddings.word_embeddings.weight"])] == 0.5 ** (layers + 1)
    plain = param_groups(model, Recipe(lr=1.0))  # default: one lr, decay off for biases and LayerNorm only
    assert [(g["lr"], g["weight_decay"]) for g in plain] == [(1.0, 0.01), (1.0, 0.0)]
    assert sum(len(g["params"]) for g in plain) == len(named)


def test_label_smoothing_trains_and_is_recorded(tmp_path):
    split = _write_split(tmp_path / "split.jsonl")
    recipe = Recipe(epochs=1, batch_size=4, threads=1, lr=1e-3, label_smoothing=0.1, llrd=0.8)
    summary = train(standins.build(tmp_path / "base", standins.TINY_ENCODER), tmp_path / "m", recipe, split, split)
    assert summary["recipe"]["label_smoothing"] == 0.1 and summary["recipe"]["llrd"] == 0.8
    assert summary["history"][0]["train_loss"] > 0


def test_data_seed_moves_batches_and_augmentation_but_not_the_initialisation(tmp_path):
    """Runs for a soup (make train) differ in --data-seed only: their heads start from the same weights."""
    base = standins.build(tmp_path / "base", standins.TINY_ENCODER)
    split = _write_split(tmp_path / "split.jsonl")
    load = AutoModelForTokenClassification.from_pretrained

    def head(name, **kw):
        recipe = Recipe(epochs=1, batch_size=4, threads=1, augment=3, **kw)
        summary = train(base, tmp_path / name, recipe, split, split)
        return load(tmp_path / name).classifier.weight, summary

    # lr 0: the weights written are the initial ones
    start_a, s = head("a", lr=0.0, seed=5, data_seed=6)
    assert s["recipe"]["data_seed"] == 6
    start_b, _ = head("b", lr=0.0, seed=5, data_seed=7)
    start_c, _ = head("c", lr=0.0, seed=6, data_seed=6)
    assert torch.equal(start_a, start_b) and not torch.equal(start_a, start_c)
    # trained, the data seed matters; 0 means "the seed"
    same_1, _ = head("d", lr=1e-3, seed=5, data_seed=0)
    same_2, _ = head("e", lr=1e-3, seed=5, data_seed=5)
    other, _ = head("f", lr=1e-3, seed=5, data_seed=7)
    assert torch.equal(same_1, same_2) and not torch.equal(same_1, other)


def test_rdrop_adds_the_symmetric_kl_of_two_dropout_passes(tmp_path):
    from transformers import AutoTokenizer

    from training.data import training_examples
    from training.train import collate, encode_examples, step_loss

    base = standins.build(tmp_path / "base", standins.TINY_ENCODER)
    model = AutoModelForTokenClassification.from_pretrained(base, num_labels=len(LABELS))
    tokenizer = AutoTokenizer.from_pretrained(base)
    batch = collate(encode_examples(tokenizer, training_examples(_write_split(tmp_path / "s.jsonl")), 64), 0)
    plain, rdrop = Recipe(), Recipe(rdrop=1.0)
    model.eval()  # no dropout: both passes agree, the KL term is zero and the loss is the model's own
    own = model(**batch).loss
    assert torch.allclose(step_loss(model, batch, plain), own, atol=1e-6)
    assert torch.allclose(step_loss(model, batch, rdrop), own, atol=1e-6)
    model.train()
    torch.manual_seed(0)
    two = step_loss(model, batch, rdrop)
    torch.manual_seed(0)
    ce_only = step_loss(model, batch, Recipe(rdrop=1e-9))  # the same two passes, KL weighted ~0
    assert two > ce_only  # dropout makes the passes differ: the KL term is positive
    summary = train(
        base,
        tmp_path / "m",
        Recipe(epochs=1, batch_size=4, threads=1, rdrop=0.5),
        tmp_path / "s.jsonl",
        tmp_path / "s.jsonl",
    )
    assert summary["recipe"]["rdrop"] == 0.5 and summary["history"][0]["train_loss"] > 0
