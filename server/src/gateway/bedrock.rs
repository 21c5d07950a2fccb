//! AWS Bedrock (being written).
