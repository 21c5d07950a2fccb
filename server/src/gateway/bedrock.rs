//! AWS Bedrock as an upstream, through its Converse API: the pure parts, with no IO.
//!
//! A call to a Bedrock deployment goes:
//!
//! 1. **Body.** An OpenAI chat request becomes a Converse body with
//!    [`openai_to_converse`]; an Anthropic Messages request with [`anthropic_to_converse`]
//!    (which goes through OpenAI's format, so both share one mapping). The model is not in
//!    the body: [`paths`] gives `/model/{id}/converse` or `/model/{id}/converse-stream`,
//!    the id percent-encoded as it must be sent.
//! 2. **Signature.** [`sign`] computes AWS Signature Version 4 headers (service
//!    `bedrock`, the deployment's region) for the exact URL, headers and body that will be
//!    sent; the caller adds them to the request.
//! 3. **Answer.** A `Converse` response becomes a chat completion with
//!    [`converse_to_openai`]. A `ConverseStream` response is binary
//!    (`application/vnd.amazon.eventstream`): a [`Decoder`] turns its bytes into [`Frame`]s
//!    and a [`ConverseStreamToOpenAi`] turns the frames into OpenAI chunk events, holding
//!    the usage chunk and `data: [DONE]` until [`ConverseStreamToOpenAi::finish`]. An
//!    Anthropic caller gets OpenAI's answer translated once more by `translate`
//!    (`openai_to_anthropic_response`, `OpenAiToAnthropicStream`).
//! 4. **Errors.** Bedrock names its errors (`x-amzn-ErrorType`, or `:exception-type` in a
//!    stream); [`exception_kind`] says what they are in Sluice's terms.
//!
//! [`encode`] writes frames as Bedrock does, for tests and for a stand-in upstream.

pub mod converse;
pub mod eventstream;
pub mod sigv4;

pub use converse::{
    ConverseStreamToOpenAi, anthropic_to_converse, converse_to_openai, exception_kind,
    openai_to_converse, paths,
};
pub use eventstream::{Decoder, Frame, FrameError, HeaderValue, MAX_FRAME_BYTES, encode};
pub use sigv4::{Credentials, encode_path_segment, sign};
