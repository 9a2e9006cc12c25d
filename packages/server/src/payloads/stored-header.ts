import { readSafetensorsHeader, type SafetensorsHeader } from "@memory-exchange/shared";
import { PAYLOAD_CHUNK_BYTES, type PayloadInfo, type PayloadStore } from "../store/payload-store.js";

/** The safetensors header of a stored payload, reading only the chunks it spans (usually the first). */
export async function readStoredHeader(payloads: PayloadStore, info: PayloadInfo): Promise<SafetensorsHeader> {
  let need = 8;
  for (;;) {
    const lastSeq = Math.min(info.chunkCount - 1, Math.ceil(need / PAYLOAD_CHUNK_BYTES) - 1);
    const chunks = await payloads.readChunks(info.chunkKey, 0, lastSeq);
    const prefix = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const parsed = readSafetensorsHeader(prefix);
    if (parsed.ok) {
      const { ok: _ok, ...header } = parsed;
      return header;
    }
    if ("error" in parsed || parsed.needBytes > info.size) throw new Error(`stored payload ${info.digest} has an unreadable header`);
    need = parsed.needBytes;
  }
}
