/** The producer version written into every archive's manifest. */
export const VERSION = "0.1.0";
