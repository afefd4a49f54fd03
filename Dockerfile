# reel's production image: Debian 12 with the runtime packages reel needs.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev pkg-config \
      libavcodec-dev libavformat-dev libavutil-dev libavdevice-dev libswresample-dev libopus-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && install -m 0755 target/release/reel /usr/local/bin/reel

FROM debian:bookworm-slim
# FFmpeg's libraries; Chromium, a virtual display and fonts for composite recordings.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
      libavcodec59 libavformat59 libavutil57 libavdevice59 libswresample4 libopus0 \
      chromium xvfb fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/reel reel
COPY --from=build /usr/local/bin/reel /usr/local/bin/reel
USER reel
WORKDIR /var/lib/reel
ENV REEL_LISTEN=0.0.0.0:3000 \
    REEL_DATA_DIR=/var/lib/reel/data
EXPOSE 3000
VOLUME ["/var/lib/reel/data"]
ENTRYPOINT ["reel"]
CMD ["serve"]
