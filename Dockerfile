# syntax=docker/dockerfile:1
# Build stage: compile the release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY data ./data
COPY models ./models
RUN cargo build --release --locked --bin fairtreat

# Runtime stage: the binary, the policy and the models, as a non-root user.
FROM debian:bookworm-slim
RUN useradd --system --no-create-home --uid 10001 fairtreat
WORKDIR /app
COPY --from=build /src/target/release/fairtreat /usr/local/bin/fairtreat
COPY config ./config
COPY models ./models
USER 10001
ENV FAIRTREAT_BIND=0.0.0.0:8080 \
    RUST_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fairtreat"]
CMD ["serve"]
