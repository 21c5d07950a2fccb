//! Prompt token counts: exact for OpenAI model families, with the tiktoken encodings they
//! use (`o200k_base`, `cl100k_base`, ...) compiled into the binary; about four characters a
//! token for every other model.

use sluice_engine::input::Message;

/// Tokens OpenAI adds per chat message (its start, role and end markers).
const PER_MESSAGE: u64 = 3;
/// Tokens that prime the assistant's reply.
const REPLY_PRIMING: u64 = 3;

/// The prompt's tokens for upstream model `model`, and whether the count is exact.
pub fn prompt_tokens(model: &str, messages: &[Message]) -> (u64, bool) {
    match tiktoken_rs::bpe_for_model(model) {
        Ok(bpe) => {
            let count = |text: &str| bpe.encode_ordinary(text).len() as u64;
            let tokens = messages
                .iter()
                .map(|m| PER_MESSAGE + count(&m.role) + count(&m.content))
                .sum::<u64>()
                + REPLY_PRIMING;
            (tokens, true)
        }
        Err(_) => (estimate(messages.iter().map(|m| m.content.as_str())), false),
    }
}

/// Tokens of plain texts (embedding inputs) for `model`, and whether the count is exact.
pub fn text_tokens<'a>(model: &str, texts: impl Iterator<Item = &'a str> + Clone) -> (u64, bool) {
    match tiktoken_rs::bpe_for_model(model) {
        Ok(bpe) => (
            texts.map(|t| bpe.encode_ordinary(t).len() as u64).sum(),
            true,
        ),
        Err(_) => (estimate(texts), false),
    }
}

/// About four characters a token.
pub fn estimate<'a>(texts: impl Iterator<Item = &'a str>) -> u64 {
    let chars: usize = texts.map(str::len).sum();
    (chars as u64).div_ceil(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: &str) -> Message {
        Message {
            role: role.to_string(),
            content: content.to_string(),
            tool_calls: Vec::new(),
        }
    }

    #[test]
    fn openai_families_are_counted_exactly_and_others_estimated() {
        // "hello world" is two tokens in both o200k_base and cl100k_base; "user" is one.
        let messages = [message("user", "hello world")];
        assert_eq!(
            prompt_tokens("gpt-4o-mini", &messages),
            (3 + 1 + 2 + 3, true)
        );
        assert_eq!(prompt_tokens("gpt-4", &messages), (9, true));
        assert_eq!(
            text_tokens(
                "text-embedding-3-small",
                ["hello world", "hello"].into_iter()
            ),
            (3, true)
        );
        // Not an OpenAI tokenizer: the estimate.
        assert_eq!(
            prompt_tokens("claude-sonnet-4", &messages),
            (3, false),
            "11 characters"
        );
    }
}
