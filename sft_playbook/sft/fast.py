"""Speed options of the native trainer (all off by default; each one keeps training exact).

- `LossModel`: the module that is trained (and wrapped by DDP / FSDP2 / torch.compile): it returns
  the summed cross-entropy over the output tokens and their count, so the loss is computed inside
  the wrapped forward (FSDP2 gathers the output layer there).
- `train.loss: chunked` -> the output layer and the cross-entropy in chunks of rows, gradients
  computed in the forward pass; the full (tokens x vocab) fp32 logits are never materialised (with
  a 128k vocabulary they are 2 GB per 4k tokens). The output layer is called as the model calls it
  (a LoRA adapter or `modules_to_save` copy on lm_head, a bias), followed by the logit transforms
  of the model's forward (`logit_transforms`: Gemma-2/3 final-logit softcapping, Granite
  `logits_scaling`, Cohere `logit_scale`); a plain bias-free `nn.Linear` head with no transform
  takes the hand-written kernel `linear_cross_entropy`. At setup `check_chunked_head` compares
  these logits with the model's own forward on a few tokens and refuses (`ModelError`) when they
  differ, e.g. for a model whose forward transforms logits in a way not listed here.
- `train.attention: varlen` -> packed micro-batches become one row of concatenated samples with
  cumulative sequence lengths; attention runs per sample through PyTorch's variable-length Flash
  Attention (`torch.nn.attention.varlen`, CUDA) or, where that is missing (CPU), one causal SDPA
  call per sample. No (L x L) mask, no padding inside a pack, samples never see each other.
- `train.compile: true` -> every decoder layer compiled with `torch.compile` (in place, so
  checkpoint keys do not change), and the per-chunk part of the chunked loss too.
"""
from __future__ import annotations

import functools
import inspect
import logging

import torch
import torch.nn.functional as F

from ..settings import LOSSES
from .data import IGNORE

log = logging.getLogger(__name__)

ATTN_NAME = "sft_varlen"


# ----------------------------------------------------------------------------- loss
def _ce_chunk(logits, targets, acc_dtype, grad_dtype, need_grad: bool):
    """Summed CE of one chunk of logits and, if asked, d(sum)/d(logits) = softmax - onehot (zero on
    ignored rows), in grad_dtype. Pure tensor code: `torch.compile` fuses it into a few passes.

    Returns:
        ``(loss, grad)``: the summed CE, a 0-d tensor in ``acc_dtype``; the (n, V) gradient w.r.t. the
        logits in ``grad_dtype``, or None when ``need_grad`` is False.
    """
    logits = logits.to(acc_dtype)
    valid = targets != IGNORE
    safe_t = torch.where(valid, targets, torch.zeros_like(targets))
    lse = torch.logsumexp(logits, dim=-1)
    picked = logits.gather(1, safe_t[:, None]).squeeze(1)
    loss = ((lse - picked) * valid).sum()
    if not need_grad:
        return loss, None
    g = torch.exp(logits - lse[:, None])
    g = g.scatter_add(1, safe_t[:, None], -torch.ones_like(picked)[:, None])
    g = g * valid[:, None]
    return loss, g.to(grad_dtype)


_CE_CHUNK_COMPILED = None


def _ce_chunk_fn(compiled: bool):
    global _CE_CHUNK_COMPILED
    if not compiled:
        return _ce_chunk
    if _CE_CHUNK_COMPILED is None:
        _CE_CHUNK_COMPILED = torch.compile(_ce_chunk)  # static first; dynamic once a shape changes
    return _CE_CHUNK_COMPILED


class LinearCrossEntropy(torch.autograd.Function):
    """sum over rows with target != -100 of CE(hidden @ weight.T, target); grads made in forward."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_size, compute_dtype, compiled):
        """The summed loss, chunk by chunk, with d loss / d hidden and d loss / d weight computed here.

        Args:
            ctx: the autograd context (keeps the gradients for ``backward``).
            hidden: (N, D) hidden states.
            weight: (V, D) output layer weight.
            targets: (N,) token ids, -100 = ignored.
            chunk_size: rows per chunk.
            compute_dtype: dtype of the matmuls (None: hidden's dtype).
            compiled: use the ``torch.compile``-d per-chunk kernel.

        Returns:
            A scalar (fp32, or fp64 for fp64 inputs): the summed cross-entropy.
        """
        n = hidden.shape[0]
        h = hidden.to(compute_dtype) if compute_dtype is not None else hidden
        w = weight.to(h.dtype)
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(h) if need_h else None
        acc = torch.promote_types(torch.float32, h.dtype)  # fp32, or fp64 for fp64 inputs
        grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_w else None
        total = torch.zeros((), dtype=acc, device=hidden.device)
        chunk_ce = _ce_chunk_fn(compiled)
        for start in range(0, n, chunk_size):
            hc, tc = h[start:start + chunk_size], targets[start:start + chunk_size]
            loss, g = chunk_ce(hc @ w.t(), tc, acc, h.dtype, need_h or need_w)
            total += loss
            if need_h:
                grad_h[start:start + chunk_size] = g @ w
            if need_w:
                grad_w += (g.t() @ hc).to(acc)
            del g
        ctx.save_for_backward(grad_h if need_h else None, grad_w if need_w else None)
        ctx.dtypes = (hidden.dtype, weight.dtype)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        """The stored gradients scaled by ``grad_out`` (gradients of hidden and weight only).

        Returns:
            Six gradients, one per ``forward`` input: (N, D) for ``hidden`` in its dtype and (V, D) for
            ``weight`` in its dtype (each None when not needed), then None for the other four.
        """
        grad_h, grad_w = ctx.saved_tensors
        gh = (grad_h * grad_out).to(ctx.dtypes[0]) if grad_h is not None else None
        gw = (grad_w * grad_out).to(ctx.dtypes[1]) if grad_w is not None else None
        return gh, gw, None, None, None, None


def linear_cross_entropy(hidden, weight, targets, chunk_size: int = 2048, compute_dtype=None,
                         compiled: bool = False):
    """Summed token cross-entropy of `hidden @ weight.T` against `targets` (-100 = ignored), without
    keeping the logits: peak extra memory is one chunk of fp32 logits plus the gradient buffers.

    Shapes: hidden (..., D) (flattened to N rows), weight (V, D), targets (...) with N elements.

    Returns:
        A 0-d tensor (fp32, fp64 for fp64 inputs) in nats: the cross-entropy summed over the N rows
        whose target is not -100, not the mean. Differentiable w.r.t. ``hidden`` and ``weight`` when
        grad mode is on; under ``torch.no_grad`` no gradient buffers are made.
    """
    hidden = hidden.reshape(-1, hidden.shape[-1])
    if not torch.is_grad_enabled():  # validation: no gradient buffers (needs_input_grad ignores no_grad)
        with torch.no_grad():
            h = hidden.to(compute_dtype) if compute_dtype is not None else hidden
            w, t = weight.to(h.dtype), targets.reshape(-1)
            acc = torch.promote_types(torch.float32, h.dtype)
            return sum(_ce_chunk_fn(compiled)(h[i:i + chunk_size] @ w.t(), t[i:i + chunk_size], acc, h.dtype, False)[0]
                       for i in range(0, h.shape[0], chunk_size))
    return LinearCrossEntropy.apply(hidden, weight, targets.reshape(-1), int(chunk_size), compute_dtype, bool(compiled))


class HeadCrossEntropy(torch.autograd.Function):
    """sum over rows with target != -100 of CE(head_fn(hidden), target), chunk by chunk, with the
    gradients of hidden and of `params` (the trainable tensors head_fn uses) made in forward."""

    @staticmethod
    def forward(ctx, hidden, targets, head_fn, chunk_size, *params):
        """The summed loss of ``head_fn(hidden)``, chunk by chunk, with the gradients of ``hidden`` and of
        ``params`` computed here (autograd through ``head_fn`` on each chunk).

        Args:
            ctx: the autograd context (keeps the gradients for ``backward``).
            hidden: (N, D) hidden states.
            targets: (N,) token ids, -100 = ignored.
            head_fn: (n, D) hidden states -> (n, V) logits.
            chunk_size: rows per chunk.
            *params: the tensors ``head_fn`` uses that may need gradients.

        Returns:
            A fp32 scalar: the summed cross-entropy.
        """
        need_h = ctx.needs_input_grad[0]
        need_p = [ctx.needs_input_grad[4 + i] for i in range(len(params))]
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_p = [torch.zeros(p.shape, dtype=torch.promote_types(torch.float32, p.dtype), device=p.device)
                  if n else None for p, n in zip(params, need_p)]
        wrt_p = [p for p, n in zip(params, need_p) if n]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.shape[0], chunk_size):
            tc = targets[start:start + chunk_size]
            with torch.enable_grad():
                hc = hidden[start:start + chunk_size].detach().requires_grad_(need_h)
                logits = head_fn(hc)
                loss = F.cross_entropy(logits.float(), tc, ignore_index=IGNORE, reduction="sum")
            wrt = ([hc] if need_h else []) + wrt_p
            if wrt and loss.requires_grad:
                grads = list(torch.autograd.grad(loss, wrt, allow_unused=True))
                if need_h:
                    g = grads.pop(0)
                    grad_h[start:start + chunk_size] = 0 if g is None else g
                it = iter(grads)
                for i, n in enumerate(need_p):
                    if n:
                        g = next(it)
                        if g is not None:
                            grad_p[i] += g
            elif need_h:
                grad_h[start:start + chunk_size] = 0
            total += loss.detach().float()
        ctx.grads = (grad_h, grad_p, [p.dtype for p in params])
        return total

    @staticmethod
    def backward(ctx, grad_out):
        """The stored gradients scaled by ``grad_out`` (for ``hidden`` and ``params``).

        Returns:
            The (N, D) gradient of ``hidden`` (None when not needed), None for ``targets``, ``head_fn``
            and ``chunk_size``, then one gradient per tensor of ``params`` in its own dtype and shape
            (None for those that need none).
        """
        grad_h, grad_p, dtypes = ctx.grads
        del ctx.grads
        gh = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        gp = [(g * grad_out).to(d) if g is not None else None for g, d in zip(grad_p, dtypes)]
        return (gh, None, None, None, *gp)


def head_cross_entropy(hidden, head_fn, params, targets, chunk_size: int = 2048):
    """Summed token cross-entropy of `head_fn(hidden)` (logits) against `targets` (-100 = ignored),
    `chunk_size` rows at a time; peak extra memory is one chunk of logits and its gradient.
    params: the tensors head_fn uses that may need gradients (they get them through this call).

    Shapes: hidden (..., D) (flattened to N rows), head_fn (n, D) -> (n, V), targets (...) with N
    elements.

    Returns:
        A fp32 0-d tensor in nats: the cross-entropy summed over the N rows whose target is not
        -100, not the mean; under ``torch.no_grad`` computed chunk by chunk without gradients.
    """
    hidden, targets = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    if not torch.is_grad_enabled():  # validation: the loss only (a Function would make gradients)
        return sum(F.cross_entropy(head_fn(hidden[i:i + chunk_size]).float(), targets[i:i + chunk_size],
                                   ignore_index=IGNORE, reduction="sum") for i in range(0, hidden.shape[0], chunk_size))
    return HeadCrossEntropy.apply(hidden, targets, head_fn, int(chunk_size), *params)


def logit_transforms(config) -> list[tuple[str, object]]:
    """What a causal LM's forward does to `lm_head(hidden)` before the loss, read from its config:
    [(description, fn(logits) -> logits)] in the order the model applies them. Known: Cohere
    `logit_scale` (logits * s), Granite `logits_scaling` (logits / s), Gemma-2/3
    `final_logit_softcapping` (tanh(logits / c) * c).

    Returns:
        ``[(description, fn)]`` such as ``("final_logit_softcapping=30.0", fn)``, in the order
        scale, scaling, softcapping; ``[]`` for a model that uses its head's output as it is.
    """
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    out = []
    scale = getattr(cfg, "logit_scale", None)
    if isinstance(scale, (int, float)) and scale != 1:
        out.append((f"logit_scale={scale}", lambda x, s=float(scale): x * s))
    div = getattr(cfg, "logits_scaling", None)
    if isinstance(div, (int, float)) and div != 1:
        out.append((f"logits_scaling={div}", lambda x, s=float(div): x / s))
    cap = getattr(cfg, "final_logit_softcapping", None)
    if cap:
        out.append((f"final_logit_softcapping={cap}", lambda x, c=float(cap): torch.tanh(x / c) * c))
    return out


# ------------------------------------------------------------------------ attention
@functools.cache
def _varlen_kernel():
    """PyTorch's variable-length Flash Attention and how to ask it for causal / GQA, or None
    (looked up once: it is asked on every attention call).

    Returns:
        ``(varlen_attn, its signature's parameters)``, or None when this PyTorch has no
        ``torch.nn.attention.varlen``.
    """
    try:
        from torch.nn.attention.varlen import varlen_attn
    except Exception:  # older torch
        return None
    params = inspect.signature(varlen_attn).parameters
    return varlen_attn, params


def varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers attention function (registered as "sft_varlen").

    query (1, H, T, D), key/value (1, Hkv, T, D): T tokens of several samples back to back;
    kwargs cu_seq_lens_q (int32, N+1) and max_length_q give the sample boundaries. Each sample
    attends causally to itself only.

    Returns:
        ``(output, None)``: the attention output (1, T, H, D) (the batch size of ``query`` when no
        boundaries are given) and no attention weights, as transformers expects.

    Raises:
        ValueError: the model's attention asks for softcapping or attention sinks, or a varlen
            call has more than one row.
    """
    if kwargs.get("softcap") or kwargs.get("s_aux") is not None:
        raise ValueError("varlen attention: this model's attention uses softcapping or sinks, which varlen "
                         "does not apply; use train.attention=sdpa")
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        # no boundaries given (e.g. a plain padded batch): causal SDPA over each row. Right padding
        # only: real tokens never see the pads that follow them; pads are never in the loss.
        mask = attention_mask if attention_mask is not None and attention_mask.dim() == 4 else None
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, is_causal=mask is None,
                                             scale=scaling, enable_gqa=key.shape[1] != query.shape[1])
        return out.transpose(1, 2).contiguous(), None
    if query.shape[0] != 1:
        raise ValueError("varlen attention expects one packed row per micro-batch (batch size 1)")
    kern = _varlen_kernel() if query.is_cuda else None
    dtype = query.dtype
    if kern is not None and dtype not in (torch.float16, torch.bfloat16):
        # the rotary embedding leaves q/k in fp32 under autocast; SDPA would cast them, so do we
        dtype = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else None
    if kern is not None and dtype is not None:
        varlen_attn, params = kern
        q = query[0].transpose(0, 1).to(dtype).contiguous()  # (T, H, D)
        k = key[0].transpose(0, 1).to(dtype).contiguous()
        v = value[0].transpose(0, 1).to(dtype).contiguous()
        extra = {}
        if "enable_gqa" in params:
            extra["enable_gqa"] = k.shape[1] != q.shape[1]
        elif k.shape[1] != q.shape[1]:
            rep = q.shape[1] // k.shape[1]
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if "is_causal" in params:
            extra["is_causal"] = True
        else:
            extra["window_size"] = (-1, 0)
        if "scale" in params and scaling is not None:
            extra["scale"] = scaling
        m = int(kwargs.get("max_length_q") or q.shape[0])
        out = varlen_attn(q, k, v, cu, cu, m, m, **extra)
        return out.unsqueeze(0), None
    # Reference path (CPU, fp32): one causal SDPA per sample.
    bounds = cu.tolist()
    outs = [F.scaled_dot_product_attention(query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], is_causal=True,
                                           scale=scaling, enable_gqa=key.shape[1] != query.shape[1])
            for s, e in zip(bounds[:-1], bounds[1:]) if e > s]
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


def varlen_backend(device_type: str = "cuda") -> str:
    """What varlen attention runs on: PyTorch's Flash varlen kernel, or one SDPA call per sample.

    Returns:
        A one-line description for the log: the Flash varlen kernel (CUDA with
        ``torch.nn.attention.varlen``) or the per-sample SDPA fallback.
    """
    if device_type == "cuda" and _varlen_kernel() is not None:
        return "flash-varlen (torch.nn.attention.varlen; bf16/fp16, else one SDPA per sample)"
    return "one causal SDPA call per sample (no varlen kernel here)"


def _no_mask(*args, **kwargs):
    return None


def register_varlen_attention() -> None:
    """Register ``varlen_attention`` (and no mask building) with transformers under ``ATTN_NAME``."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(ATTN_NAME, varlen_attention)
    AttentionMaskInterface.register(ATTN_NAME, _no_mask)


def varlen_unsupported(model, max_seq_len: int) -> str | None:
    """Why `varlen_attention` would not compute what the model's own attention computes, or None.

    It runs plain causal softmax attention per sample: no attention-logit softcapping (Gemma-2), no
    sliding window shorter than a sample (samples are at most max_seq_len tokens), and only models
    whose attention takes a registered function (`_supports_attention_backend`).

    Returns:
        One reason, as a clause for ``train.attention=varlen: <reason>``, or None when varlen is exact
        for this model.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    if not getattr(type(base), "_supports_attention_backend", False):
        return f"{type(base).__name__} does not take a custom attention function"
    if getattr(cfg, "attn_logit_softcapping", None):
        return f"it applies attention logit softcapping (attn_logit_softcapping={cfg.attn_logit_softcapping})"
    if attention_dropout(model):
        return f"it applies attention dropout ({attention_dropout(model)}), which the varlen kernel call does not"
    window = getattr(cfg, "sliding_window", None)
    uses_window = getattr(cfg, "use_sliding_window", True) and (
        "sliding_attention" in (getattr(cfg, "layer_types", None) or ["sliding_attention"]))
    if isinstance(window, int) and uses_window and window < max_seq_len:
        return f"it uses sliding-window attention (window {window} < data.max_seq_len {max_seq_len})"
    return None


def _text_config(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base, (base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config)


def attention_dropout(model) -> float:
    """The model's attention-probability dropout (0.0 when it has none): `attention_dropout`,
    `attn_pdrop` or `attention_probs_dropout_prob` in its config.

    Returns:
        The first of those keys that holds a non-zero number, as a float probability; else 0.0.
    """
    _, cfg = _text_config(model)
    for key in ("attention_dropout", "attn_pdrop", "attention_probs_dropout_prob"):
        value = getattr(cfg, key, None)
        if isinstance(value, (int, float)) and value:
            return float(value)
    return 0.0


def packing_unsupported(model, max_seq_len: int) -> str | None:
    """Why packed rows (several samples in one row, kept apart by a block-diagonal causal mask and
    restarting positions) would not compute what the model computes on each sample alone, or None.

    The packed mask is plain causal attention within each sample: a sliding window shorter than a
    sample would be ignored (Mistral, Qwen2 with use_sliding_window, Gemma-2's local layers), and
    position biases built from a 2-D padding mask (ALiBi: Bloom, MPT, Falcon with alibi) cannot take
    the 4-D block mask at all.

    Returns:
        One reason (a clause naming the window size or ALiBi), or None when packing is exact.
    """
    base, cfg = _text_config(model)
    window = getattr(cfg, "sliding_window", None)
    uses_window = getattr(cfg, "use_sliding_window", True) and (
        "sliding_attention" in (getattr(cfg, "layer_types", None) or ["sliding_attention"]))
    if isinstance(window, int) and uses_window and window < max_seq_len:
        return f"it uses sliding-window attention (window {window} < data.max_seq_len {max_seq_len})"
    if getattr(cfg, "alibi", False) or getattr(cfg, "model_type", "") in ("bloom", "mpt"):
        return "its ALiBi position bias is built from a 2-D padding mask, not the packed block mask"
    return None


def use_varlen_attention(model) -> None:
    """Switch a loaded transformers model (or a peft wrapper of one) to the varlen attention.

    Raises:
        RuntimeError: the model's config still names another attention implementation afterwards.
    """
    register_varlen_attention()
    if torch.cuda.is_available() and _varlen_kernel() is None:
        log.warning("train.attention=varlen: this PyTorch has no torch.nn.attention.varlen; falling back to one "
                    "SDPA call per sample (correct, but slow)")
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        base.set_attn_implementation(ATTN_NAME)
    except Exception as exc:  # older transformers: set the config field directly
        log.debug("set_attn_implementation failed (%s); setting the config field", exc)
        base.config._attn_implementation = ATTN_NAME
    if base.config._attn_implementation != ATTN_NAME:
        raise RuntimeError(f"could not switch {type(base).__name__} to varlen attention")


# -------------------------------------------------------------------------- batches
def collate_varlen(items: list[list[dict]], pad_id: int, pad_to: int | None = None) -> dict:
    """All samples of a micro-batch as one row (no padding between them), with their boundaries.

    items: as `data.collate` (each item a list of examples with input_ids and targets).
    pad_to: pad the row to this many tokens with one extra segment (fixed shapes for torch.compile);
    max_length is then pad_to itself, one value for every batch, so torch.compile does not recompile
    for each new longest sample (Flash only sizes its grid with it).

    Returns:
        A dict: ``input_ids``, ``targets``, ``position_ids`` (1, T) int64 (T: all tokens, or
        ``pad_to`` when that is more), ``cu_seq_lens`` (S+1,) int32 cumulative sample lengths (S
        samples, plus the padding segment) and ``max_length`` (an int: the longest segment, at least
        ``pad_to``).
    """
    ids, tgts, pos, lens = [], [], [], []
    for item in items:
        for ex in item:
            n = len(ex["input_ids"])
            ids.extend(ex["input_ids"])
            tgts.extend(ex["targets"])
            pos.extend(range(n))
            lens.append(n)
    total = len(ids)
    if pad_to is not None and total < pad_to:
        n = pad_to - total
        ids.extend([pad_id] * n)
        tgts.extend([IGNORE] * n)
        pos.extend(range(n))
        lens.append(n)
    cu = [0]
    for n in lens:
        cu.append(cu[-1] + n)
    return {"input_ids": torch.tensor([ids], dtype=torch.long),
            "targets": torch.tensor([tgts], dtype=torch.long),
            "position_ids": torch.tensor([pos], dtype=torch.long),
            "cu_seq_lens": torch.tensor(cu, dtype=torch.int32),
            "max_length": max(max(lens), pad_to or 0)}


# ---------------------------------------------------------------------- the module
class LossModel(torch.nn.Module):
    """Wraps a causal LM; forward returns (summed output-token loss, number of output tokens)."""

    def __init__(self, model, loss: str = "full", chunk_size: int = 2048, compute_dtype=None,
                 compile_loss: bool = False):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"train.loss must be one of {', '.join(LOSSES)}, not {loss!r}")
        self.model, self.loss, self.chunk_size, self.compute_dtype = model, loss, int(chunk_size), compute_dtype
        self.compile_loss = bool(compile_loss)
        if loss == "chunked":
            self.transforms = [fn for _, fn in logit_transforms(self._base().config)]
            head = self._base().get_output_embeddings()
            # the hand-written kernel only where the output layer is exactly hidden @ W.T
            self.plain_head = type(head) is torch.nn.Linear and head.bias is None and not self.transforms

    def _base(self):
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def head_logits(self, hidden):
        """The model's logits from its last hidden states: output layer, then its transforms.

        Returns:
            (..., V) logits for (..., D) ``hidden``, in the output layer's dtype.
        """
        logits = self._base().get_output_embeddings()(hidden)
        for fn in self.transforms:
            logits = fn(logits)
        return logits

    def forward(self, input_ids, targets, position_ids=None, attention_mask=None, cu_seq_lens=None,
                max_length=None):
        """The summed loss and the number of output tokens of one micro-batch.

        Args:
            input_ids: (B, T) token ids.
            targets: (B, T) next-token ids, -100 where no loss is taken.
            position_ids: (B, T) positions (restarting per sample when packed), or None.
            attention_mask: (B, T) padding mask or (B, 1, T, T) packed block mask, or None.
            cu_seq_lens: (N+1,) int32 sample boundaries of a varlen row (B = 1), or None.
            max_length: the longest sample of a varlen row (with ``cu_seq_lens``).

        Returns:
            (loss, count): the summed token cross-entropy (a fp32 scalar tensor) and the number of
            tokens with a target (an int64 scalar tensor).
        """
        kw = {}
        if cu_seq_lens is not None:
            kw = {"cu_seq_lens_q": cu_seq_lens, "cu_seq_lens_k": cu_seq_lens,
                  "max_length_q": max_length, "max_length_k": max_length}
        count = (targets != IGNORE).sum()
        if self.loss == "chunked":
            base = self._base()
            decoder = getattr(base, base.base_model_prefix)
            hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=False, **kw).last_hidden_state
            head = base.get_output_embeddings()
            if self.plain_head:
                return linear_cross_entropy(hidden, head.weight, targets, self.chunk_size, self.compute_dtype,
                                            self.compile_loss), count
            params = [p for p in head.parameters() if p.requires_grad]
            return head_cross_entropy(hidden, self.head_logits, params, targets, self.chunk_size), count
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                            use_cache=False, **kw).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=IGNORE, reduction="sum")
        return loss, count


def loss_model(model, loss: str = "full", chunk_size: int = 2048, compute_dtype=None, compile_loss: bool = False,
               check: bool = True):
    """The trained module (see `LossModel`). loss="chunked" is checked first (`check_chunked_head`):
    it raises ModelError when the chunked path would not give the model's own logits.
    compile_loss: torch.compile the per-chunk softmax / gradient of the chunked loss (plain heads).

    Returns:
        The ``LossModel`` wrapping ``model`` (its ``forward`` returns (summed loss, token count)).

    Raises:
        ModelError: loss="chunked" and the model has no output layer or decoder attribute, or (with
            ``check``) the chunked logits differ from the model's own.
        ValueError: ``loss`` is not one of ``LOSSES``.
    """
    if loss == "chunked":
        _require_chunkable(model)
    lm = LossModel(model, loss, chunk_size, compute_dtype, compile_loss)
    if loss == "chunked" and check:
        check_chunked_head(lm)
    return lm


def _require_chunkable(model) -> None:
    from .model import ModelError

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    name = type(base).__name__
    if base.get_output_embeddings() is None:
        raise ModelError(f"train.loss=chunked: {name} has no output layer (get_output_embeddings() is None); "
                         "use train.loss=full")
    prefix = getattr(base, "base_model_prefix", None)
    if not prefix or not hasattr(base, prefix):
        raise ModelError(f"train.loss=chunked: {name} has no decoder attribute {base.base_model_prefix!r} to take "
                         "hidden states from; use train.loss=full")


def check_chunked_head(lm, n_tokens: int = 12, rtol: float = 1e-3) -> float:
    """Compare the chunked path's logits (decoder hidden states -> output layer -> logit transforms)
    with the model's own forward on `n_tokens` tokens; ModelError naming the model and the
    difference when they disagree (a transform in the model's forward that `logit_transforms`
    does not know).

    Returns:
        The largest difference relative to the largest logit: ``max |full - chunked| / max |full|``
        over the (1, n_tokens, V) logits; 1.0 when the shapes differ.

    Raises:
        ModelError: that difference is above ``rtol`` (or the shapes differ).
    """
    from .model import ModelError

    model, base = lm.model, lm._base()
    param = next(model.parameters())
    vocab = base.get_output_embeddings().weight.shape[0]
    ids = (torch.arange(n_tokens, device=param.device) * 7919 + 11) % vocab
    ids = ids[None]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            full = model(input_ids=ids, use_cache=False).logits.float()
            decoder = getattr(base, base.base_model_prefix)
            hidden = decoder(input_ids=ids, use_cache=False).last_hidden_state
            mine = lm.head_logits(hidden).float()
    finally:
        model.train(was_training)
    diff = float((full - mine).abs().max() / full.abs().max().clamp(min=1e-6)) if full.shape == mine.shape else 1.0
    if not diff <= rtol:
        known = ", ".join(d for d, _ in logit_transforms(base.config)) or "none"
        raise ModelError(f"train.loss=chunked would not be exact for {type(base).__name__}: its forward's logits "
                         f"differ from output layer + known logit transforms ({known}) by {diff:.2e} (relative); "
                         "use train.loss=full")
    return diff


def compile_layers(model) -> int:
    """torch.compile every decoder layer in place (state_dict keys unchanged).

    Returns:
        The number of modules whose class name ends in ``DecoderLayer`` (0: nothing compiled).
    """
    n = 0
    for module in model.modules():
        if type(module).__name__.endswith("DecoderLayer"):
            module.compile()
            n += 1
    return n
