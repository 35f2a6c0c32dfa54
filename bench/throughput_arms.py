"""Baseline arms of the training-throughput benchmark (bench/train_throughput.py).

- ``run_plain``: a plain Hugging Face loop (the issue's yardstick): fp32 master weights + bf16 autocast,
  SDPA, fused AdamW, ``model(..., labels=...).loss`` (full fp32 logits, as HF computes them), one optimizer
  step per micro-batch. Mode "padded" (right-padded micro-batches) or "concat" (samples concatenated into
  rows of ``seq_len`` tokens with no masking between them: samples leak into each other, not valid training).
- ``run_trl``: TRL's ``SFTTrainer`` on the same pre-tokenized samples (``input_ids`` + ``labels`` with -100
  on the prompt), variants "padded", "padfree", "packed" (SDPA), "packed-flex" (flex attention), and
  "best" / "best-compile": TRL at its best documented settings (no gradient checkpointing, Liger kernels,
  padding-free BFD packing, flex attention; the second with torch_compile=True).

Both take the same ``samples`` (``throughput_common.make_samples``), use them in the given order (cycling when
the steps need more; TRL's best-fit-decreasing packing reorders within what it is given) and return
``throughput_common.result_row`` rows. Neither raises: a failure comes back as a row with an "error" key.

``python bench/throughput_arms.py --selftest`` runs every arm on the ``tiny`` shape (CPU is fine) and prints
the rows as JSON lines.
"""
from __future__ import annotations

import gc
import itertools
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import throughput_common as tc  # noqa: E402

LR = 5e-5
PAD_ID = 0
N_LOSSES = 10


def _first_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else ''}"[:300]


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _free_cuda():
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _device_info():
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda"), torch.cuda.get_device_name()
    return torch.device("cpu"), "cpu"


def _timed(fn):
    """Adds wall_s (the whole call: model build, data preparation, warm-up, timed steps) to the row."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        row = fn(*args, **kwargs)
        row["wall_s"] = round(time.perf_counter() - t, 1)
        return row

    return wrapper


def _cycled(samples: list[dict]):
    return itertools.cycle(samples)


# ---------------------------------------------------------------------------------------------------------
# (a) plain HF loop
# ---------------------------------------------------------------------------------------------------------
def _plain_batches(samples, mode, micro_batch, seq_len, n_steps):
    """CPU tensors per step: (input_ids, attention_mask or None, labels, real_tokens)."""
    import torch

    out = []
    it = _cycled(samples)
    if mode == "padded":
        for _ in range(n_steps):
            chunk = [next(it) for _ in range(micro_batch)]
            chunk = [(s["input_ids"][:seq_len], s["labels"][:seq_len]) for s in chunk]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.full((micro_batch, width), PAD_ID, dtype=torch.long)
            lab = torch.full((micro_batch, width), -100, dtype=torch.long)
            att = torch.zeros((micro_batch, width), dtype=torch.long)
            for r, (i, l) in enumerate(chunk):
                ids[r, : len(i)] = torch.tensor(i)
                lab[r, : len(l)] = torch.tensor(l)
                att[r, : len(i)] = 1
            out.append((ids, att, lab, int(att.sum())))
    elif mode == "concat":
        need = n_steps * micro_batch * seq_len
        ids_stream, lab_stream = [], []
        while len(ids_stream) < need:
            s = next(it)
            ids_stream += s["input_ids"]
            lab_stream += s["labels"]
        ids_all = torch.tensor(ids_stream[:need]).view(n_steps, micro_batch, seq_len)
        lab_all = torch.tensor(lab_stream[:need]).view(n_steps, micro_batch, seq_len)
        for k in range(n_steps):
            out.append((ids_all[k].clone(), None, lab_all[k].clone(), micro_batch * seq_len))
    else:
        raise ValueError(f"mode must be 'padded' or 'concat', not {mode!r}")
    if torch.cuda.is_available():
        out = [(a.pin_memory(), None if b is None else b.pin_memory(), c.pin_memory(), n) for a, b, c, n in out]
    return out


@_timed
def run_plain(shape: str, samples: list[dict], mode: str, micro_batch: int, seq_len: int, steps: int,
              warmup: int, seed: int = 0, lr: float = LR) -> dict:
    """The plain HF loop. Never raises: errors (out of memory included) come back in the row's "error"."""
    import torch

    dev, dev_name = _device_info()
    cuda = dev.type == "cuda"
    extra = dict(variant=mode, mode=mode, micro_batch=micro_batch, seq_len=seq_len, steps=steps, warmup=warmup,
                 device=dev_name, attn_implementation="sdpa", valid_training=(mode == "padded"),
                 samples_isolated=(mode == "padded"), optimizer="AdamW(fused)" if cuda else "AdamW",
                 autocast="bf16" if cuda else "none (cpu fp32)", grad_clip=None, lr=lr,
                 torch_version=torch.__version__)
    model = opt = None
    params, losses_t, real_tokens, seconds = 0, [], 0, 0.0
    try:
        batches = _plain_batches(samples, mode, micro_batch, seq_len, warmup + steps)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        model = tc.build_model(shape, seed).to(dev)
        model.train()
        params = tc.n_params(model)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=cuda)
        t0 = None
        for step, (ids, att, lab, n_real) in enumerate(batches):
            if step == warmup:
                if cuda:
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            ids = ids.to(dev, non_blocking=True)
            lab = lab.to(dev, non_blocking=True)
            att = att.to(dev, non_blocking=True) if att is not None else None
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = model(input_ids=ids, attention_mask=att, labels=lab, use_cache=False).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step < N_LOSSES:
                losses_t.append(loss.detach())
            if step >= warmup:
                real_tokens += n_real
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0 if t0 is not None else 0.0
        losses = [float(x) for x in losses_t]
        peak = torch.cuda.max_memory_allocated() if cuda else None
        return tc.result_row("plain", shape, params, real_tokens, seconds, losses, peak, **extra)
    except Exception as exc:  # noqa: BLE001 - a failed arm must not stop the others
        err = "out of memory" if _is_oom(exc) else _first_line(exc)
        peak = torch.cuda.max_memory_allocated() if cuda else None
        losses = []
        try:
            losses = [float(x) for x in losses_t]
        except Exception:  # noqa: BLE001
            pass
        del exc
    finally:
        del model, opt
        losses_t = None
        _free_cuda()
    return tc.result_row("plain", shape, params, 0, 0.0, losses, peak, error=err, **extra)


# ---------------------------------------------------------------------------------------------------------
# (b) TRL SFTTrainer
# ---------------------------------------------------------------------------------------------------------
TRL_VARIANTS = {
    # name: (SFTConfig overrides, attn_implementation, default max_length)
    "padded": (dict(packing=False, padding_free=False), "sdpa", 2048),
    # padding_free: each micro-batch flattened into one row, boundaries in position_ids (no packing)
    "padfree": (dict(packing=False, padding_free=True), "sdpa", None),
    # TRL's default packing (best-fit decreasing, padding-free), SDPA
    "packed": (dict(packing=True, packing_strategy="bfd"), "sdpa", 4096),
    # same, flex attention (block mask built from position_ids)
    "packed-flex": (dict(packing=True, packing_strategy="bfd"), "flex_attention", 4096),
    # TRL at its best documented configuration (issue 16): TRL's default gradient checkpointing off
    # (its docs: Liger's memory savings let you "turn off ... gradient checkpointing to further boost the
    # performance"), Liger kernels (`use_liger_kernel`), padding-free BFD packing, flex attention (the
    # packing-aware attention this machine has: no flash-attn package, no Hub kernels offline)
    "best": (dict(packing=True, packing_strategy="bfd", gradient_checkpointing=False, use_liger_kernel=True),
             "flex_attention", 4096),
    # same + `torch_compile=True` (Trainer compiles the whole model)
    "best-compile": (dict(packing=True, packing_strategy="bfd", gradient_checkpointing=False,
                          use_liger_kernel=True, torch_compile=True), "flex_attention", 4096),
}


def _tiny_tokenizer(vocab_size: int):
    """A download-free tokenizer with ids 0/1/2 = pad/bos/eos (SFTTrainer insists on a processing_class)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({f"t{i}": i for i in range(4, vocab_size)})
    tok = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


def _trl_samples(samples, n_rows, row_tokens, packed):
    """The samples in the given order, cycled: exactly n_rows for unpacked variants; for packed ones enough
    for n_rows packed rows of row_tokens tokens (plus 10%)."""
    it = _cycled(samples)
    if not packed:
        return [next(it) for _ in range(n_rows)]
    out, total, need = [], 0, int(n_rows * row_tokens * 1.1) + 1
    while total < need:
        s = next(it)
        out.append(s)
        total += len(s["input_ids"])
    return out


class _CountingCollator:
    """Wraps the trainer's collator and records the real (non-pad) tokens of every batch it builds, in order
    (the dataloader may collate ahead of the step; batch k belongs to step k either way)."""

    def __init__(self, inner, pad_id):
        self.inner, self.pad_id, self.counts = inner, pad_id, []

    def __call__(self, examples):
        batch = self.inner(examples)
        if "attention_mask" in batch:
            n = int(batch["attention_mask"].sum())
        else:  # padding-free: one flattened row, pad only if padded to a multiple
            n = int((batch["input_ids"] != self.pad_id).sum())
        self.counts.append(n)
        return batch

    def __getattr__(self, name):
        return getattr(self.inner, name)


def check_isolation(attn_implementation: str = "sdpa", device=None) -> bool | str:
    """Does TRL's padding-free batch (one flattened row, boundaries in position_ids, no attention mask) keep
    packed samples from attending to each other with this attention implementation? Runs the tiny shape on
    TRL's own collator output and compares the logits of a sample alone with its logits inside the packed row."""
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    try:
        dev = device or _device_info()[0]
        model = tc.build_model("tiny", 0, attn_implementation=attn_implementation).to(dev).eval()
        a = {"input_ids": list(range(5, 40)), "labels": list(range(5, 40))}
        b = {"input_ids": list(range(100, 123)), "labels": list(range(100, 123))}
        coll = DataCollatorForLanguageModeling(pad_token_id=PAD_ID, padding_free=True)
        packed = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in coll([a, b]).items()}
        packed.pop("labels")
        with torch.no_grad():
            # use_cache=False as SFTTrainer.compute_loss sets it (a cache disables the packed-sequence mask)
            lp = model(**packed, use_cache=False).logits[0, len(a["input_ids"]):].float()
            lb = model(input_ids=torch.tensor([b["input_ids"]], device=dev), use_cache=False).logits[0].float()
        return bool(torch.allclose(lp, lb, atol=1e-4, rtol=1e-3))
    except Exception as exc:  # noqa: BLE001
        return f"unknown ({_first_line(exc)})"


@_timed
def run_trl(shape: str, samples: list[dict], variant: str, steps: int, warmup: int, seed: int = 0,
            workdir: str | None = None, micro_batch: int = 2, seq_len: int | None = None,
            lr: float = LR) -> dict:
    """TRL SFTTrainer, one variant of TRL_VARIANTS. micro_batch = per_device_train_batch_size (samples per
    step unpacked, packed rows per step packed); seq_len = max_length (default 2048 padded, 4096 packed).
    Never raises: errors come back in the row's "error"."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import tempfile

    import torch

    dev, dev_name = _device_info()
    cuda = dev.type == "cuda"
    extra = dict(variant=variant, micro_batch=micro_batch, steps=steps, warmup=warmup, device=dev_name,
                 lr=lr, torch_version=torch.__version__)
    model = trainer = None
    params, losses, real_tokens, seconds, peak, err = 0, [], 0, 0.0, None, None
    try:
        import transformers
        import trl
        from transformers import TrainerCallback
        from transformers.trainer_callback import PrinterCallback
        from trl import SFTConfig, SFTTrainer
        import datasets
        from datasets import Dataset

        datasets.disable_progress_bars()

        extra.update(trl_version=trl.__version__, transformers_version=transformers.__version__)
        if variant not in TRL_VARIANTS:
            raise ValueError(f"unknown TRL variant {variant!r}; one of {sorted(TRL_VARIANTS)}")
        overrides, attn, default_len = TRL_VARIANTS[variant]
        max_length = seq_len if seq_len is not None else default_len
        packed = bool(overrides.get("packing"))
        padding_free = packed or bool(overrides.get("padding_free"))
        extra.update(seq_len=max_length, attn_implementation=attn, packing=packed, padding_free=padding_free,
                     valid_training=True)
        if padding_free:
            iso = check_isolation(attn, dev)
            extra["samples_isolated"] = iso
            if iso is not True:
                extra["valid_training"] = False
        else:
            extra["samples_isolated"] = True

        n_steps = warmup + steps
        data = _trl_samples(samples, n_steps * micro_batch, max_length or 2048, packed)
        ds = Dataset.from_dict({"input_ids": [s["input_ids"] for s in data],
                                "labels": [s["labels"] for s in data]})

        if cuda:
            torch.cuda.reset_peak_memory_stats()
        model = tc.build_model(shape, seed, attn_implementation=attn)
        params = tc.n_params(model)
        tok = _tiny_tokenizer(model.config.vocab_size)
        workdir = workdir or tempfile.mkdtemp(prefix="trl_bench_")
        kwargs = dict(
            output_dir=os.path.join(workdir, f"trl-{shape}-{variant}"),
            max_steps=n_steps, per_device_train_batch_size=micro_batch, gradient_accumulation_steps=1,
            learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
            optim="adamw_torch_fused" if cuda else "adamw_torch",
            bf16=cuda, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
            train_sampling_strategy="sequential", dataloader_num_workers=0, torch_compile=False,
            seed=seed, max_length=max_length, shuffle_dataset=False, use_cpu=not cuda)
        kwargs.update(overrides)
        cfg = SFTConfig(**kwargs)
        # the settings that decide speed, as the trainer resolved them
        extra.update({k: getattr(cfg, k, None) for k in ("gradient_checkpointing", "use_liger_kernel", "torch_compile",
                                                          "packing", "packing_strategy", "padding_free", "bf16",
                                                          "max_grad_norm")})
        try:
            import liger_kernel  # noqa: F401
            from importlib.metadata import version

            extra["liger_version"] = version("liger-kernel")
        except Exception:  # noqa: BLE001
            pass
        extra["optimizer"] = cfg.optim if isinstance(cfg.optim, str) else getattr(cfg.optim, "value", str(cfg.optim))
        extra["grad_clip"] = cfg.max_grad_norm

        times: list[float] = []
        logged: list[float] = []

        def _sync_time():
            if cuda:
                torch.cuda.synchronize()
            return time.perf_counter()

        class Timer(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                if not times:
                    times.append(_sync_time())  # times[0] = start of step 0, times[k+1] = end of step k

            def on_step_end(self, args, state, control, **kw):
                times.append(_sync_time())

            def on_log(self, args, state, control, logs=None, **kw):
                if logs and "loss" in logs and len(logged) < N_LOSSES:
                    logged.append(float(logs["loss"]))

        trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, callbacks=[Timer()])
        trainer.remove_callback(PrinterCallback)  # no per-step log dicts on stdout
        counter = _CountingCollator(trainer.data_collator, PAD_ID)
        trainer.data_collator = counter
        trainer.train()
        done = len(times) - 1
        if done < n_steps:
            raise RuntimeError(f"trainer ran {done} of {n_steps} steps")
        seconds = times[n_steps] - times[warmup]
        real_tokens = sum(counter.counts[warmup:n_steps])
        extra["tokens_per_step"] = round(sum(counter.counts[:n_steps]) / n_steps, 1)
        losses = logged
        peak = torch.cuda.max_memory_allocated() if cuda else None
    except Exception as exc:  # noqa: BLE001 - a failed arm must not stop the others
        err = "out of memory" if _is_oom(exc) else _first_line(exc)
        peak = torch.cuda.max_memory_allocated() if cuda else None
        del exc
    finally:
        try:
            if trainer is not None:
                trainer.accelerator.free_memory()  # drops its references to model/optimizer/dataloader
        except Exception:  # noqa: BLE001
            pass
        del trainer, model
        _free_cuda()
    if err is not None:
        return tc.result_row("trl", shape, params, 0, 0.0, losses, peak, error=err, **extra)
    return tc.result_row("trl", shape, params, real_tokens, seconds, losses, peak, **extra)


# ---------------------------------------------------------------------------------------------------------
def selftest() -> int:
    """Every arm on the tiny shape for a few steps; prints one JSON row per arm. Returns the number of
    unexpected failures (flex attention has no backward on CPU: that one is expected off-GPU)."""
    import torch

    samples = tc.make_samples(64, tc.SHAPES["tiny"]["vocab_size"], seed=0)
    runs = [
        lambda: run_plain("tiny", samples, "padded", micro_batch=2, seq_len=2048, steps=3, warmup=1),
        lambda: run_plain("tiny", samples, "concat", micro_batch=1, seq_len=1024, steps=3, warmup=1),
    ]
    for variant in TRL_VARIANTS:
        runs.append(lambda v=variant: run_trl("tiny", samples, v, steps=3, warmup=1, micro_batch=2,
                                              seq_len=1024 if v.startswith("packed") else None))
    bad = 0
    for run in runs:
        row = run()
        print(json.dumps(row), flush=True)
        # off-GPU: flex attention has no CPU backward, Liger kernels need Triton (a GPU)
        expected = (not torch.cuda.is_available() and row.get("attn_implementation") == "flex_attention"
                    and ("CPU" in str(row.get("error")) or "triton" in str(row.get("error")).lower()))
        bad += bool(row.get("error")) and not expected
    return bad


if __name__ == "__main__":
    if "--selftest" in sys.argv[1:]:
        sys.exit(1 if selftest() else 0)
    print(__doc__)
