# backstream as a container: Node and npm bring everything (Bun comes from npm), and Debian's libisal2 brings
# ISA-L, which deflates backups about 1.8x as fast as libdeflate, the archive 2% larger (bench/README.md).
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libisal2 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
ENV NODE_ENV=production
EXPOSE 8090
VOLUME ["/app/pb_data"]
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:8090/api/health').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
CMD ["npm", "start", "--", "--http=0.0.0.0:8090", "--dir=/app/pb_data"]
