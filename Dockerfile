# reel's production image: Debian 12 with the runtime packages reel needs.
# scripts/image-check.sh builds the runtime stage's file system from the same package list
# (deploy/runtime-packages.txt) and records a call in it.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang libclang-dev pkg-config \
      libavcodec-dev libavformat-dev libavutil-dev libavdevice-dev libswresample-dev \
      libswscale-dev libopus-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && install -m 0755 target/release/reel /usr/local/bin/reel

FROM debian:bookworm-slim
COPY deploy/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
 && sed -e 's/#.*//' /tmp/runtime-packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
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
