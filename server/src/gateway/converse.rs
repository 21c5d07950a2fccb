//! Conversations: OpenAI's `POST /v1/chat/completions` and Anthropic's `POST /v1/messages`
//! (with `POST /v1/messages/count_tokens`). Either front door can reach either kind of
//! upstream: the request, the answer and the stream are translated when the caller's format
//! and the upstream's differ, and both sides are decided on in the caller's terms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Map, Value};
use sluice_engine::Decision;
use sluice_engine::input::{Content, DecisionInput, Message, Surface};

use super::error::{Format, GatewayError, Kind, insert_rate_limits};
use super::openai::{self, ChatRequest};
use super::stream::{self, Adapter};
use super::upstream::Deployment;
use super::window::{StreamPolicy, Window};
use super::{
    Answer, Call, Forwarded, Gateway, Redactor, anthropic, bedrock, demo, forward, plan, read_body,
    redactor, sse, translate, upstream_headers, with_decision_header,
};
use crate::config::ProviderKind;
use crate::meter;

/// A conversation request in the caller's format.
struct Conversation {
    format: Format,
    body: Map<String, Value>,
    model: String,
    stream: bool,
}

impl Conversation {
    fn parse(format: Format, body: Map<String, Value>) -> Result<Conversation, GatewayError> {
        Ok(match format {
            Format::OpenAi => {
                let chat = ChatRequest::parse(body)?;
                Conversation {
                    format,
                    model: chat.model,
                    stream: chat.stream,
                    body: chat.body,
                }
            }
            Format::Anthropic => {
                let messages = anthropic::MessagesRequest::parse(body)?;
                Conversation {
                    format,
                    model: messages.model,
                    stream: messages.stream,
                    body: messages.body,
                }
            }
        })
    }

    fn content(&self) -> Content {
        match self.format {
            Format::OpenAi => ChatRequest {
                body: self.body.clone(),
                model: self.model.clone(),
                stream: self.stream,
            }
            .content(),
            Format::Anthropic => anthropic::MessagesRequest {
                body: self.body.clone(),
                model: self.model.clone(),
                stream: self.stream,
            }
            .content(),
        }
    }

    fn rewrite_text(&mut self, f: impl FnMut(&str) -> String) {
        let body = std::mem::take(&mut self.body);
        self.body = match self.format {
            Format::OpenAi => {
                let mut chat = ChatRequest {
                    body,
                    model: self.model.clone(),
                    stream: self.stream,
                };
                chat.rewrite_text(f);
                chat.body
            }
            Format::Anthropic => {
                let mut messages = anthropic::MessagesRequest {
                    body,
                    model: self.model.clone(),
                    stream: self.stream,
                };
                messages.rewrite_text(f);
                messages.body
            }
        };
    }

    /// The request as OpenAI's chat completions API would take it, for `model`.
    fn as_openai(&self, model: &str) -> Result<Map<String, Value>, GatewayError> {
        Ok(match self.format {
            Format::OpenAi => {
                let mut body = self.body.clone();
                body.insert("model".to_string(), Value::String(model.to_string()));
                if self.stream && !self.include_usage() {
                    // Usage is how the answer is settled; the relay drops the chunk again.
                    let options = body
                        .entry("stream_options")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(options) = options {
                        options.insert("include_usage".to_string(), Value::Bool(true));
                    }
                }
                body
            }
            Format::Anthropic => {
                let mut body = translate::anthropic_to_openai_request(&self.body, model)?;
                if self.stream {
                    // Usage is how the answer is settled; ask for it in the stream.
                    body.insert(
                        "stream_options".to_string(),
                        serde_json::json!({"include_usage": true}),
                    );
                }
                body
            }
        })
    }

    /// The request as Anthropic's Messages API would take it, for `model`.
    fn as_anthropic(&self, model: &str) -> Result<Map<String, Value>, GatewayError> {
        Ok(match self.format {
            Format::Anthropic => {
                let mut body = self.body.clone();
                body.insert("model".to_string(), Value::String(model.to_string()));
                body
            }
            Format::OpenAi => translate::openai_to_anthropic_request(&self.body, model)?,
        })
    }

    fn include_usage(&self) -> bool {
        self.body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// The wire format a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    OpenAi,
    Anthropic,
    /// Converse: translated to and from OpenAI's format at the edge of the call.
    Bedrock,
}

fn wire(deployment: &Deployment) -> Wire {
    match deployment.provider.kind {
        ProviderKind::Anthropic => Wire::Anthropic,
        ProviderKind::Bedrock => Wire::Bedrock,
        ProviderKind::Openai
        | ProviderKind::OpenaiCompatible
        | ProviderKind::Azure
        | ProviderKind::Demo => Wire::OpenAi,
    }
}

/// The format of what a wire answers, once Bedrock's is translated.
fn answer_format(wire: Wire) -> Format {
    match wire {
        Wire::Anthropic => Format::Anthropic,
        Wire::OpenAi | Wire::Bedrock => Format::OpenAi,
    }
}

/// A Bedrock `ConverseStream` body (binary event-stream frames) as OpenAI chunk events.
fn bedrock_events(
    upstream: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, String>>,
    translator: bedrock::ConverseStreamToOpenAi,
) -> futures_util::stream::BoxStream<'static, Result<bytes::Bytes, String>> {
    struct State {
        upstream: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, String>>,
        decoder: bedrock::Decoder,
        translator: bedrock::ConverseStreamToOpenAi,
        ended: bool,
    }
    let state = State {
        upstream,
        decoder: bedrock::Decoder::new(),
        translator,
        ended: false,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        if state.ended {
            return None;
        }
        let out: Result<Vec<u8>, String> = match state.upstream.next().await {
            Some(Ok(chunk)) => match state.decoder.push(&chunk) {
                Ok(frames) => Ok(frames
                    .iter()
                    .flat_map(|frame| state.translator.push(frame))
                    .flatten()
                    .collect()),
                Err(e) => Err(format!("malformed event stream: {e}")),
            },
            Some(Err(e)) => Err(e),
            None => {
                state.ended = true;
                match state.decoder.finish() {
                    Ok(()) => Ok(state.translator.finish().into_iter().flatten().collect()),
                    Err(e) => Err(format!("malformed event stream: {e}")),
                }
            }
        };
        if out.is_err() {
            state.ended = true;
        }
        Some((out.map(bytes::Bytes::from), state))
    })
    .boxed()
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat_completions(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    respond(
        &gateway,
        client,
        request,
        Format::OpenAi,
        "/v1/chat/completions",
    )
    .await
}

/// `POST /v1/messages`.
pub(super) async fn messages(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    respond(&gateway, client, request, Format::Anthropic, "/v1/messages").await
}

async fn respond(
    gateway: &Gateway,
    client: SocketAddr,
    request: Request,
    format: Format,
    path: &str,
) -> Response {
    match converse(gateway, client, request, format, path).await {
        Ok(response) => response,
        Err(error) => error.into_response(format),
    }
}

/// `POST /v1/messages/count_tokens`: a documented estimate (about four characters per
/// token), after authentication and validation like a real call.
pub(super) async fn count_tokens(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let result = async {
        Call::start(
            &gateway,
            request.headers(),
            "POST",
            "/v1/messages/count_tokens",
            Some(client),
        )
        .await?;
        let body = read_body(request, gateway.max_body_bytes).await?;
        let parsed = anthropic::MessagesRequest::parse_count_tokens(body)?;
        let tokens = anthropic::count_tokens_estimate(&parsed);
        Ok::<_, GatewayError>(axum::Json(anthropic::count_tokens_body(tokens)).into_response())
    }
    .await;
    result.unwrap_or_else(|error| error.into_response(Format::Anthropic))
}

async fn converse(
    gateway: &Gateway,
    client: SocketAddr,
    request: Request,
    format: Format,
    path: &str,
) -> Result<Response, GatewayError> {
    // 1. authenticate, 2. parse.
    let mut call = Call::start(gateway, request.headers(), "POST", path, Some(client)).await?;
    let body = read_body(request, gateway.max_body_bytes).await?;
    let mut conversation = Conversation::parse(format, body)?;
    call.request.stream = conversation.stream;

    // 5. decide on the prompt, 6. apply.
    let mut input = call.input(
        Surface::Prompt,
        "llm.chat",
        &conversation.model,
        conversation.content(),
    );
    let (tokens, exact) = meter::tokens::prompt_tokens(
        gateway.upstream_model(&conversation.model),
        &input.content.messages,
    );
    call.meter_prompt(gateway, &mut input, &conversation.model, (tokens, exact))
        .await?;
    let decision = call.decide_and_share(&input).await?;
    if let Some(redactor) = redactor(&decision, &input, &call, gateway.hash_key.as_ref())? {
        conversation.rewrite_text(|text| redactor.redact(text));
    }
    let plan =
        plan(gateway, &conversation.model, &decision).map_err(|e| call.failed(&input, None, e))?;
    // Settled with the tokens of the answer when the call ends (see `Respond`); refunded
    // when no upstream serves it.
    let reservation = call
        .reserve(gateway, &input, &plan.alias, &decision)
        .await?;
    let headroom = reservation.headroom().to_vec();
    let headers = upstream_headers(&decision);

    // 7. forward, translating for the deployment's wire format.
    let build = |d: &Deployment| -> Result<(String, Value), GatewayError> {
        Ok(match wire(d) {
            Wire::OpenAi => (
                "/chat/completions".to_string(),
                Value::Object(conversation.as_openai(&d.model)?),
            ),
            Wire::Anthropic => (
                "/messages".to_string(),
                Value::Object(conversation.as_anthropic(&d.model)?),
            ),
            Wire::Bedrock => (
                bedrock::paths(&d.model, conversation.stream),
                bedrock::openai_to_converse(&conversation.as_openai(&d.model)?)?,
            ),
        })
    };
    let local = |d: &Deployment| -> Result<Answer, GatewayError> {
        let chat = ChatRequest {
            body: conversation.as_openai(&d.model)?,
            model: d.model.clone(),
            stream: conversation.stream,
        };
        Ok(if conversation.stream {
            Answer::LocalStream(demo::chat_stream(&d.model, &chat))
        } else {
            Answer::Local(demo::chat(&d.model, &chat))
        })
    };
    let Forwarded {
        deployment,
        answer,
        in_flight,
    } = match forward(gateway, &plan, &headers, build, local).await {
        Ok(forwarded) => forwarded,
        Err(error) => {
            reservation.refund();
            return Err(call.failed(&input, None, error));
        }
    };

    // 8. decide on the answer, in the caller's format.
    let provider = deployment.provider.name.clone();
    let upstream_wire = wire(&deployment);
    let upstream_format = answer_format(upstream_wire);
    let respond_call = std::sync::Arc::new(Respond {
        hash_key: gateway.hash_key.clone(),
        upstream_ms: call.started.elapsed().as_secs_f64() * 1e3,
        call,
        alias: plan.alias.clone(),
        provider: provider.clone(),
        reservation,
        price: gateway.prices.of(&deployment.model),
        input_tokens: input.usage.input_tokens,
        seen_output: AtomicU64::new(0),
        reported: Default::default(),
    });
    let response = if conversation.stream {
        let events = match answer {
            Answer::Upstream(response) => {
                let bytes = response
                    .bytes_stream()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .boxed();
                if upstream_wire == Wire::Bedrock {
                    // The usage chunk settles the call's budgets; an OpenAI caller that
                    // did not ask for it never sees it (see the adapter below).
                    bedrock_events(
                        bytes,
                        bedrock::ConverseStreamToOpenAi::new(&plan.alias, true),
                    )
                } else {
                    bytes
                }
            }
            Answer::LocalStream(events) => futures_util::stream::iter(
                events
                    .into_iter()
                    .map(|e| Ok(bytes::Bytes::from(sse::data_event(&e)))),
            )
            .boxed(),
            Answer::Local(_) => futures_util::stream::empty().boxed(),
        };
        let adapter: Box<dyn Adapter> = match (upstream_format, format) {
            // Sluice asked for usage on the caller's behalf: the chunk is not theirs.
            (Format::OpenAi, Format::OpenAi) if !conversation.include_usage() => {
                Box::new(stream::OpenAiPassthrough::hiding_usage())
            }
            (Format::OpenAi, Format::OpenAi) => Box::new(stream::OpenAiPassthrough::default()),
            (Format::Anthropic, Format::Anthropic) => {
                Box::new(stream::AnthropicPassthrough::default())
            }
            (Format::Anthropic, Format::OpenAi) => Box::new(
                translate::AnthropicToOpenAiStream::new(&plan.alias, conversation.include_usage()),
            ),
            (Format::OpenAi, Format::Anthropic) => {
                Box::new(translate::OpenAiToAnthropicStream::new(&plan.alias))
            }
        };
        let window = Window::new(
            format,
            Box::new(AnswerPolicy {
                call: std::sync::Arc::clone(&respond_call),
            }),
        )
        .restoring(std::sync::Arc::clone(&respond_call.call.vault));
        // Recorded if the stream ends before its answer could be decided.
        let prompt = input.clone();
        let body = stream::relay(
            events,
            adapter,
            format,
            provider,
            Some(window),
            stream::Outcome {
                decide: {
                    let respond_call = std::sync::Arc::clone(&respond_call);
                    move |text: &str, usage: stream::StreamUsage, tool_calls| {
                        let mut messages = text_message(text);
                        if let Some(message) = messages.first_mut() {
                            message.tool_calls = tool_calls;
                        }
                        respond_call.reported_input(usage.input, usage.cached, usage.reasoning);
                        let input = respond_call.input(messages, usage.output);
                        let decided = respond_call.decide(&input).map(drop);
                        // The terminal event waits for the flags this answer's decisions
                        // set, so that the agent's next call, on any replica, sees them.
                        let settled: futures_util::future::BoxFuture<'static, _> =
                            Box::pin(async move {
                                respond_call.call.flags_shared().await;
                                decided
                            });
                        settled
                    }
                },
                ended: move |error: &GatewayError| {
                    let provider = Some(respond_call.provider.as_str());
                    let _ = respond_call.call.failed(&prompt, provider, error.clone());
                },
            },
            in_flight,
        );
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(body)
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    } else {
        let body = match answer {
            Answer::Upstream(response) => {
                let failed = |message: String| {
                    let error = GatewayError::new(Kind::BadGateway, message);
                    respond_call.call.failed(&input, Some(&provider), error)
                };
                let bytes = response.bytes().await.map_err(|e| {
                    failed(format!("upstream `{provider}` broke off its answer: {e}"))
                })?;
                serde_json::from_slice::<Value>(&bytes).map_err(|_| {
                    failed(format!(
                        "upstream `{provider}` answered with a body that is not JSON"
                    ))
                })?
            }
            Answer::Local(body) => body,
            Answer::LocalStream(_) => Value::Null,
        };
        drop(in_flight);
        let body = if upstream_wire == Wire::Bedrock {
            bedrock::converse_to_openai(&body, &plan.alias)
        } else {
            body
        };
        let body = match (upstream_format, format) {
            (Format::OpenAi, Format::Anthropic) => {
                translate::openai_to_anthropic_response(&body, &plan.alias)
            }
            (Format::Anthropic, Format::OpenAi) => {
                translate::anthropic_to_openai_response(&body, &plan.alias)
            }
            _ => body,
        };
        let finished = finish(&respond_call, format, body);
        // The answer waits for the flags its decision set, as a streamed one does.
        respond_call.call.flags_shared().await;
        finished?
    };
    let mut response = with_decision_header(response, &decision);
    insert_rate_limits(response.headers_mut(), format, &headroom, meter::now());
    Ok(response)
}

fn text_message(text: &str) -> Vec<Message> {
    vec![Message {
        role: "assistant".to_string(),
        content: text.to_string(),
        tool_calls: Vec::new(),
    }]
}

/// The response policy, asked by the stream window as the answer goes by. Allowing
/// evaluations only shape redaction and are not recorded (the final decision on the whole
/// answer is); a deny is recorded and ends the stream.
struct AnswerPolicy {
    call: std::sync::Arc<Respond>,
}

impl StreamPolicy for AnswerPolicy {
    fn redactor(
        &mut self,
        text: &str,
        calls: &[sluice_engine::input::ToolCall],
    ) -> Result<Option<Redactor>, GatewayError> {
        let mut messages = text_message(text);
        if let Some(message) = messages.first_mut() {
            message.tool_calls = calls.to_vec();
        }
        let input = self.call.input(messages, 0);
        let decision = self.call.call.policies.evaluate(&input);
        if !decision.allow {
            // Decide again through the recording path: the deny is audited and returned.
            self.call.decide(&input)?;
        }
        redactor(
            &decision,
            &input,
            &self.call.call,
            self.call.hash_key.as_ref(),
        )
    }
}

/// What the response side needs from the call.
struct Respond {
    call: Call,
    /// The key of `mode: hash` redactions.
    hash_key: Option<std::sync::Arc<[u8]>>,
    alias: String,
    provider: String,
    /// When the upstream's answer began, since the call started.
    upstream_ms: f64,
    /// The call's budget and rate-limit reservation, settled when the answer is done with
    /// (delivered, denied, or abandoned by the caller mid-stream).
    reservation: meter::Reservation,
    /// The price of the deployment that answers.
    price: Option<meter::prices::Price>,
    /// The prompt's estimated tokens.
    input_tokens: u64,
    /// Output tokens estimated from the most answer text seen.
    seen_output: AtomicU64,
    /// What the upstream reported, 0 until it does: input, cached input, output and
    /// reasoning tokens.
    reported: [AtomicU64; 4],
}

impl Respond {
    /// The call's usage so far: the upstream's counts where it reported them, else the
    /// prompt's estimate and the answer text seen.
    fn usage(&self) -> meter::Usage {
        let [_, cached, output, reasoning] =
            self.reported.each_ref().map(|n| n.load(Ordering::Relaxed));
        let input = self.prompt_tokens();
        let output = if output > 0 {
            output
        } else {
            self.seen_output.load(Ordering::Relaxed)
        };
        meter::Usage {
            tokens: (input + output) as f64,
            cost_usd: self.price.map_or(0.0, |p| {
                p.cost(meter::prices::Tokens {
                    input,
                    cached,
                    output,
                    reasoning,
                })
            }),
        }
    }

    /// The prompt's tokens: the upstream's count once it reported one, else the estimate.
    fn prompt_tokens(&self) -> u64 {
        let [reported, ..] = &self.reported;
        match reported.load(Ordering::Relaxed) {
            0 => self.input_tokens,
            reported => reported,
        }
    }

    /// Records the upstream's prompt token counts (all of them, and those served from a
    /// cache).
    fn reported_input(&self, input: u64, cached: u64, reasoning: u64) {
        let [reported_input, reported_cached, _, reported_reasoning] = &self.reported;
        reported_input.store(input, Ordering::Relaxed);
        reported_cached.store(cached, Ordering::Relaxed);
        reported_reasoning.store(reasoning, Ordering::Relaxed);
    }
}

impl Drop for Respond {
    fn drop(&mut self) {
        self.reservation.settle(self.usage(), meter::now());
    }
}

impl Respond {
    /// Decides on the answer, recording the upstream's part in the audit row.
    fn decide(&self, input: &DecisionInput) -> Result<Decision, GatewayError> {
        let [_, cached, _, reasoning] = self.reported.each_ref().map(|n| n.load(Ordering::Relaxed));
        let facts = crate::audit::CallFacts {
            // The answer's row carries the prompt tokens the upstream served from its cache.
            cached_tokens: (cached > 0).then(|| i64::try_from(cached).unwrap_or(i64::MAX)),
            reasoning_tokens: (reasoning > 0).then(|| i64::try_from(reasoning).unwrap_or(i64::MAX)),
            ..crate::audit::CallFacts::answered(200, self.upstream_ms)
        };
        self.call.decide_with(input, &facts)
    }

    fn input(&self, messages: Vec<Message>, output_tokens: u64) -> DecisionInput {
        let mut input = self.call.input(
            Surface::Response,
            "llm.chat",
            &self.alias,
            Content {
                messages,
                ..Content::default()
            },
        );
        input.resource.provider = Some(self.provider.clone());
        // The answer's row and policies see the whole call's tokens, prompt included.
        input.usage.input_tokens = self.prompt_tokens();
        input.usage.output_tokens = output_tokens;
        let seen =
            meter::tokens::estimate(input.content.messages.iter().map(|m| m.content.as_str()));
        self.seen_output.fetch_max(seen, Ordering::Relaxed);
        if output_tokens > 0 {
            let [_, _, reported_output, _] = &self.reported;
            reported_output.store(output_tokens, Ordering::Relaxed);
        }
        // The audit row of the answer carries the call's cost.
        input.usage.cost_usd = self.usage().cost_usd;
        input
    }
}

/// Phase 8 for a whole answer: decide on it, apply redactions, return it.
fn finish(call: &Respond, format: Format, mut body: Value) -> Result<Response, GatewayError> {
    let answer = match format {
        Format::OpenAi => openai::answer(&body),
        Format::Anthropic => anthropic::answer(&body),
    };
    call.reported_input(
        answer.input_tokens,
        answer.cached_tokens,
        answer.reasoning_tokens,
    );
    let input = call.input(answer.messages, answer.output_tokens);
    let decision: Decision = call.decide(&input)?;
    if let Some(redactor) = redactor(&decision, &input, &call.call, call.hash_key.as_ref())? {
        redact_answer(format, &mut body, |text| redactor.redact(text));
    }
    // Placeholders the prompt's `tokenize` redactions handed out go back to their values.
    {
        let vault = call
            .call
            .vault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        redact_answer(format, &mut body, |text| vault.restore(text));
    }
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

fn redact_answer(format: Format, body: &mut Value, redact: impl Fn(&str) -> String) {
    match format {
        Format::OpenAi => {
            if let Some(Value::Array(choices)) = body.get_mut("choices") {
                for choice in choices.iter_mut() {
                    if let Some(Value::String(text)) =
                        choice.get_mut("message").and_then(|m| m.get_mut("content"))
                    {
                        *text = redact(text);
                    }
                }
            }
        }
        Format::Anthropic => {
            if let Some(Value::Array(blocks)) = body.get_mut("content") {
                for block in blocks.iter_mut() {
                    if let Some(Value::String(text)) = block.get_mut("text") {
                        *text = redact(text);
                    }
                }
            }
        }
    }
}
