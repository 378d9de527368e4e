// Generated from protocol/schema/v1.json by scripts/gen-protocol.mjs: do not edit.
// Warren client protocol v1. Clients must ignore message types and fields they do not know.
/** Every `code` an `error` may carry. */
export const ERROR_CODES = ["bad_request", "unknown_type", "unknown_game", "invalid_params", "already_in_room", "server_draining", "not_found", "room_full", "not_in_room", "invalid_state", "invalid_input", "not_your_turn", "already_queued", "not_queued", "rate_limited", "internal"];
