/** The front end's version; the server extension must report the same. */
export const VERSION = '0.1.0';
