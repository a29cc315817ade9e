//! The BERT encoder (what `transformers.BertModel` computes, inference only).

use std::collections::HashMap;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::LayerNorm;

/// The fields of `config.json` the encoder needs.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct BertConfig {
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

/// Inputs with at most this many rows (tokens in the batch) take the matrix-vector path.
const SMALL_ROWS: usize = 64;

/// A linear layer `x · Wᵀ + b`. For a few rows (a short query) it computes `(W · xᵀ)ᵀ`
/// instead: gemm then reads the weights in place rather than packing the whole matrix on every
/// call, which for a ten-token query cost more than the arithmetic (perf: 57 % of its time);
/// single-query embedding went from 12.8 to 11 ms, close to the time of reading the weights.
struct Dense {
    weight: Tensor,
    bias: Tensor,
    inputs: usize,
}

impl Dense {
    fn new(weight: Tensor, bias: Tensor) -> Result<Dense> {
        let (_, inputs) = weight.dims2()?;
        Ok(Dense {
            weight,
            bias,
            inputs,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if m > SMALL_ROWS || k != self.inputs {
            return x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias);
        }
        // W · xᵀ: the weights are the left operand, which gemm reads in place.
        self.weight
            .matmul(&x.t()?)?
            .t()?
            .contiguous()?
            .broadcast_add(&self.bias)
    }
}

struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

pub struct Bert {
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
}

/// Takes tensors out of a safetensors map, with or without the `bert.` prefix.
pub(crate) struct Weights(pub(crate) HashMap<String, Tensor>);

impl Weights {
    pub(crate) fn take(
        &mut self,
        name: &str,
        shape: &[usize],
    ) -> std::result::Result<Tensor, String> {
        let tensor = self
            .0
            .remove(name)
            .or_else(|| self.0.remove(&format!("bert.{name}")))
            .ok_or_else(|| format!("tensor {name} is missing"))?;
        if tensor.dims() != shape {
            return Err(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                tensor.dims()
            ));
        }
        tensor
            .to_dtype(DType::F32)
            .map_err(|err| format!("tensor {name}: {err}"))
    }

    fn linear(
        &mut self,
        name: &str,
        out: usize,
        input: usize,
    ) -> std::result::Result<Dense, String> {
        let weight = self.take(&format!("{name}.weight"), &[out, input])?;
        let bias = self.take(&format!("{name}.bias"), &[out])?;
        Dense::new(weight, bias).map_err(|err| format!("tensor {name}: {err}"))
    }

    fn norm(
        &mut self,
        name: &str,
        size: usize,
        eps: f64,
    ) -> std::result::Result<LayerNorm, String> {
        let weight = self.take(&format!("{name}.weight"), &[size])?;
        let bias = self.take(&format!("{name}.bias"), &[size])?;
        Ok(LayerNorm::new(weight, bias, eps))
    }
}

/// What both encoders require of a configuration.
pub(crate) fn check_config(config: &BertConfig) -> std::result::Result<(), String> {
    if config.hidden_act != "gelu" {
        return Err(format!(
            "hidden_act {:?} (only gelu is supported)",
            config.hidden_act
        ));
    }
    if config
        .position_embedding_type
        .as_deref()
        .is_some_and(|t| t != "absolute")
    {
        return Err("only absolute position embeddings are supported".into());
    }
    if config.num_attention_heads == 0
        || !config
            .hidden_size
            .is_multiple_of(config.num_attention_heads)
    {
        return Err("hidden_size must be a multiple of num_attention_heads".into());
    }
    Ok(())
}

impl Bert {
    pub fn new(
        config: BertConfig,
        weights: HashMap<String, Tensor>,
    ) -> std::result::Result<Bert, String> {
        check_config(&config)?;
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        let mut w = Weights(weights);
        let word = w.take("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let position = w.take(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type = w.take(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let embeddings_norm = w.norm("embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                attention_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: w.linear(
                    &format!("{p}.intermediate.dense"),
                    config.intermediate_size,
                    h,
                )?,
                output: w.linear(&format!("{p}.output.dense"), h, config.intermediate_size)?,
                output_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        Ok(Bert {
            word,
            position,
            token_type,
            embeddings_norm,
            layers,
            heads: config.num_attention_heads,
            hidden: h,
        })
    }

    /// Token vectors `(batch, len, hidden)` for token ids `(batch, len)` whose padding is 0 in
    /// `mask` `(batch, len)`. Every text is segment 0 (sentence-transformers' single input).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let h = self.hidden;
        let words = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((batch, len, h))?;
        let positions = self.position.narrow(0, 0, len)?;
        let segment = self.token_type.narrow(0, 0, 1)?;
        let x = words.broadcast_add(&positions)?.broadcast_add(&segment)?;
        let mut x = self
            .embeddings_norm
            .forward(&x)?
            .reshape((batch * len, h))?;

        // Padding keys get the most negative float, as transformers does.
        let bias =
            ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?.reshape((batch, 1, 1, len))?;
        let heads = self.heads;
        let dh = h / heads;
        let scale = 1.0 / (dh as f64).sqrt();
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((batch, len, heads, dh))?
                .transpose(1, 2)?
                .contiguous()
        };
        for layer in &self.layers {
            let q = split(layer.query.forward(&x)?)?;
            let k = split(layer.key.forward(&x)?)?;
            let v = split(layer.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((batch * len, h))?;
            let attended = layer
                .attention_norm
                .forward(&(layer.attention_out.forward(&context)? + &x)?)?;
            let inner = layer.intermediate.forward(&attended)?.gelu_erf()?;
            x = layer
                .output_norm
                .forward(&(layer.output.forward(&inner)? + &attended)?)?;
        }
        x.reshape((batch, len, h))
    }
}
