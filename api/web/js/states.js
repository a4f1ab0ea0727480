// Feed states as the API names them, in the order the wall sorts them: faults first.

export const ORDER = ["offline", "frozen", "black", "tampered", "starting", "unknown", "online", "disabled"];

export const LABEL = {
  offline: "Offline",
  frozen: "Frozen",
  black: "Black",
  tampered: "Tampered",
  starting: "Starting",
  unknown: "Unknown",
  online: "Online",
  disabled: "Disabled",
};

/** What each state means, for tooltips and the live view. */
export const MEANING = {
  offline: "no packets from the camera, or it cannot be reached",
  frozen: "the picture has not changed",
  black: "the picture is black (lens covered or no signal)",
  tampered: "the picture lost its detail (blurred, sprayed or turned)",
  starting: "connecting, no picture judged yet",
  unknown: "no recent report from its worker: its last state may no longer hold",
  online: "picture healthy",
  disabled: "recording switched off",
};

export const FAULTS = new Set(["offline", "frozen", "black", "tampered"]);

/** States in which the health sampler has decoded a picture, so a snapshot exists. */
export const PICTURE = new Set(["online", "frozen", "black", "tampered"]);

export function rank(state) {
  const i = ORDER.indexOf(state);
  return i < 0 ? ORDER.indexOf("unknown") : i;
}

export const label = (state) => LABEL[state] || state;
