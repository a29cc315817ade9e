//! The bf16 encoder: the same BERT forward pass as `bert.rs`, with every matrix product on
//! bf16 operands accumulated in f32 (AMX tiles where the processor has them), the residual
//! stream, layer norms, softmax and GELU in f32, and no padding at all: the texts of a batch
//! are laid end to end, so the linear layers see only real tokens, and attention runs per text
//! over its own keys.
//!
//! Per layer and per block of 32 token rows: the query/key/value projection (one product with
//! the three weights side by side) writes queries as bf16 rows and keys and values in the pair
//! layouts the attention tiles read; attention runs per text, head and 16 queries (scores,
//! softmax and the product with the values in one pass, `kernels::AttentionBlock`); then the
//! output projection, residual and layer norm, the feed-forward up-projection with GELU, the
//! down-projection, residual and layer norm, all on the same 32 rows while they are in cache.

use std::collections::HashMap;

use candle_core::Tensor;

use crate::Pooling;
use crate::bert::{BertConfig, Weights};
use crate::kernels::{AttentionBlock, Kernels, Norm, PackedB};

/// Token rows per block of the linear layers.
const ROWS: usize = 32;
/// Dimensions per attention head this encoder supports (the tile width in bf16).
const HEAD_DIM: usize = 32;

struct Layer {
    qkv: PackedB,
    qkv_bias: Vec<f32>,
    out: PackedB,
    out_bias: Vec<f32>,
    attention_norm: Norm,
    up: PackedB,
    up_bias: Vec<f32>,
    down: PackedB,
    down_bias: Vec<f32>,
    output_norm: Norm,
}

pub(crate) struct FastBert {
    kernels: Kernels,
    hidden: usize,
    heads: usize,
    inner: usize,
    vocab: usize,
    max_positions: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    segment: Vec<f32>,
    embeddings_norm: Norm,
    layers: Vec<Layer>,
}

/// Why a model cannot run on this encoder (it then runs on the f32 one).
pub(crate) fn unsupported(config: &BertConfig) -> Option<String> {
    let h = config.hidden_size;
    if config.num_attention_heads == 0 || h != config.num_attention_heads * HEAD_DIM {
        return Some(format!(
            "heads of {} dimensions (the bf16 encoder needs {HEAD_DIM})",
            h / config.num_attention_heads.max(1)
        ));
    }
    if !config.intermediate_size.is_multiple_of(32) {
        return Some("an intermediate size that is not a multiple of 32".into());
    }
    None
}

fn vector(w: &mut Weights, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
    w.take(name, shape)?
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|err| format!("tensor {name}: {err}"))
}

fn norm(w: &mut Weights, name: &str, size: usize, eps: f64) -> Result<Norm, String> {
    Ok(Norm {
        gamma: vector(w, &format!("{name}.weight"), &[size])?,
        beta: vector(w, &format!("{name}.bias"), &[size])?,
        eps: eps as f32,
    })
}

impl FastBert {
    pub(crate) fn new(
        config: &BertConfig,
        weights: HashMap<String, Tensor>,
        kernels: Kernels,
    ) -> Result<FastBert, String> {
        if let Some(why) = unsupported(config) {
            return Err(why);
        }
        crate::bert::check_config(config)?;
        let (h, inner, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let mut w = Weights(weights);
        let word = vector(
            &mut w,
            "embeddings.word_embeddings.weight",
            &[config.vocab_size, h],
        )?;
        let position = vector(
            &mut w,
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type = vector(
            &mut w,
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let embeddings_norm = norm(&mut w, "embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let mut qkv = Vec::with_capacity(3 * h * h);
            let mut qkv_bias = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                let name = format!("{p}.attention.self.{part}");
                qkv.extend(vector(&mut w, &format!("{name}.weight"), &[h, h])?);
                qkv_bias.extend(vector(&mut w, &format!("{name}.bias"), &[h])?);
            }
            let out = format!("{p}.attention.output.dense");
            let up = format!("{p}.intermediate.dense");
            let down = format!("{p}.output.dense");
            layers.push(Layer {
                qkv: PackedB::from_linear(&qkv, 3 * h, h),
                qkv_bias,
                out: PackedB::from_linear(
                    &vector(&mut w, &format!("{out}.weight"), &[h, h])?,
                    h,
                    h,
                ),
                out_bias: vector(&mut w, &format!("{out}.bias"), &[h])?,
                attention_norm: norm(&mut w, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
                up: PackedB::from_linear(
                    &vector(&mut w, &format!("{up}.weight"), &[inner, h])?,
                    inner,
                    h,
                ),
                up_bias: vector(&mut w, &format!("{up}.bias"), &[inner])?,
                down: PackedB::from_linear(
                    &vector(&mut w, &format!("{down}.weight"), &[h, inner])?,
                    h,
                    inner,
                ),
                down_bias: vector(&mut w, &format!("{down}.bias"), &[h])?,
                output_norm: norm(&mut w, &format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(FastBert {
            kernels,
            hidden: h,
            heads: config.num_attention_heads,
            inner,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
            word,
            position,
            segment: token_type[..h].to_vec(),
            embeddings_norm,
            layers,
        })
    }

    pub(crate) fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// One pooled (and, with `normalize`, unit) vector per row of token ids.
    pub(crate) fn embed(
        &self,
        rows: &[&[u32]],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>, String> {
        let h = self.hidden;
        let k = self.kernels;
        for row in rows {
            if row.len() > self.max_positions {
                return Err(format!(
                    "{} tokens is more than the model's {} positions",
                    row.len(),
                    self.max_positions
                ));
            }
            if let Some(&id) = row.iter().find(|&&id| id as usize >= self.vocab) {
                return Err(format!("token id {id} is outside the vocabulary"));
            }
        }
        // Texts end to end; `starts[i]` is text i's first row.
        let mut starts = Vec::with_capacity(rows.len() + 1);
        let mut total = 0;
        for row in rows {
            starts.push(total);
            total += row.len();
        }
        starts.push(total);
        // Buffers read by 16- or 32-row tiles have whole blocks of rows (the extra ones
        // are zeros or stale values, never used).
        let padded = total.div_ceil(ROWS) * ROWS;
        let mut x = vec![0f32; padded * h];
        let mut xb = vec![0u16; padded * h];
        for (i, row) in rows.iter().enumerate() {
            for (p, &id) in row.iter().enumerate() {
                let t = starts[i] + p;
                let xr = &mut x[t * h..][..h];
                xr.copy_from_slice(&self.segment);
                k.bias_residual_norm(
                    &self.word[id as usize * h..][..h],
                    &self.position[p * h..][..h],
                    xr,
                    &self.embeddings_norm,
                    &mut xb[t * h..][..h],
                );
            }
        }

        // Per text: keys held (a multiple of 32) and where its keys and values start.
        let lps: Vec<usize> = rows.iter().map(|r| r.len().div_ceil(32) * 32).collect();
        let mut kv_starts = Vec::with_capacity(rows.len());
        let mut kv_len = 0;
        for &lp in &lps {
            kv_starts.push(kv_len);
            kv_len += self.heads * 32 * lp;
        }
        // Keys and values of padding positions stay zero.
        let mut kt = vec![0u16; kv_len];
        let mut vt = vec![0u16; kv_len];
        // A 16-row query tile may start at the last row: 16 rows of slack.
        let mut qb = vec![0u16; (padded + 16) * h];
        let mut ctx = vec![0u16; padded * h];
        let mut c = vec![0f32; ROWS * (3 * h).max(self.inner)];
        let mut hb = vec![0u16; ROWS * self.inner];
        let max_lp = lps.iter().copied().max().unwrap_or(32);
        let mut scores = vec![0f32; 16 * max_lp];
        let mut probs = vec![0u16; 16 * max_lp];
        let mut head_out = vec![0f32; 16 * HEAD_DIM];
        let scale = 1.0 / (HEAD_DIM as f32).sqrt();
        // The text of each row (for scattering keys and values).
        let mut text_of = vec![0usize; total];
        for i in 0..rows.len() {
            text_of[starts[i]..starts[i + 1]].fill(i);
        }

        for layer in &self.layers {
            // Queries, keys and values.
            let qkv_n = 3 * h;
            for r0 in (0..padded).step_by(ROWS) {
                k.gemm(&xb[r0 * h..], h, ROWS, &layer.qkv, &mut c, qkv_n);
                for r in 0..ROWS.min(total.saturating_sub(r0)) {
                    let t = r0 + r;
                    let out = &mut c[r * qkv_n..][..qkv_n];
                    for (o, b) in out.iter_mut().zip(&layer.qkv_bias) {
                        *o += b;
                    }
                    k.to_bf16(&out[..h], &mut qb[t * h..][..h]);
                    let i = text_of[t];
                    let (j, lp) = (t - starts[i], lps[i]);
                    for head in 0..self.heads {
                        let base = kv_starts[i] + head * 32 * lp;
                        let key = &out[h + head * HEAD_DIM..][..HEAD_DIM];
                        let value = &out[2 * h + head * HEAD_DIM..][..HEAD_DIM];
                        for pair in 0..HEAD_DIM / 2 {
                            let at = base + (pair * lp + j) * 2;
                            kt[at] = crate::kernels::bf16(key[2 * pair]);
                            kt[at + 1] = crate::kernels::bf16(key[2 * pair + 1]);
                        }
                        let row = base + (j / 2) * 64 + j % 2;
                        for (d, &v) in value.iter().enumerate() {
                            vt[row + d * 2] = crate::kernels::bf16(v);
                        }
                    }
                }
            }
            // Attention, per text, head and 16 queries.
            for (i, &lp) in lps.iter().enumerate() {
                let len = starts[i + 1] - starts[i];
                for head in 0..self.heads {
                    let base = kv_starts[i] + head * 32 * lp;
                    for q0 in (0..len).step_by(16) {
                        let t0 = starts[i] + q0;
                        let block = AttentionBlock {
                            q: &qb[t0 * h + head * HEAD_DIM..],
                            q_stride: h,
                            kt: &kt[base..][..32 * lp],
                            vt: &vt[base..][..32 * lp],
                            lp,
                            len,
                            scale,
                        };
                        k.attention(&block, &mut scores, &mut probs, &mut head_out);
                        for r in 0..16.min(len - q0) {
                            k.to_bf16(
                                &head_out[r * HEAD_DIM..][..HEAD_DIM],
                                &mut ctx[(t0 + r) * h + head * HEAD_DIM..][..HEAD_DIM],
                            );
                        }
                    }
                }
            }
            // Output projection, feed-forward, both with residual and layer norm.
            for r0 in (0..padded).step_by(ROWS) {
                let live = ROWS.min(total.saturating_sub(r0));
                k.gemm(&ctx[r0 * h..], h, ROWS, &layer.out, &mut c, h);
                for r in 0..live {
                    let t = r0 + r;
                    k.bias_residual_norm(
                        &c[r * h..][..h],
                        &layer.out_bias,
                        &mut x[t * h..][..h],
                        &layer.attention_norm,
                        &mut xb[t * h..][..h],
                    );
                }
                k.gemm(&xb[r0 * h..], h, ROWS, &layer.up, &mut c, self.inner);
                for r in 0..live {
                    k.bias_gelu_bf16(
                        &c[r * self.inner..][..self.inner],
                        &layer.up_bias,
                        &mut hb[r * self.inner..][..self.inner],
                    );
                }
                k.gemm(&hb, self.inner, ROWS, &layer.down, &mut c, h);
                for r in 0..live {
                    let t = r0 + r;
                    k.bias_residual_norm(
                        &c[r * h..][..h],
                        &layer.down_bias,
                        &mut x[t * h..][..h],
                        &layer.output_norm,
                        &mut xb[t * h..][..h],
                    );
                }
            }
        }

        Ok((0..rows.len())
            .map(|i| {
                let (s, e) = (starts[i], starts[i + 1]);
                let mut v = vec![0f32; h];
                match pooling {
                    Pooling::Mean => {
                        for t in s..e {
                            for (o, &xv) in v.iter_mut().zip(&x[t * h..][..h]) {
                                *o += xv;
                            }
                        }
                        let n = (e - s).max(1) as f32;
                        v.iter_mut().for_each(|o| *o /= n);
                    }
                    Pooling::Cls => {
                        if e > s {
                            v.copy_from_slice(&x[s * h..][..h]);
                        }
                    }
                }
                if normalize {
                    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|o| *o /= norm);
                }
                v
            })
            .collect())
    }
}
