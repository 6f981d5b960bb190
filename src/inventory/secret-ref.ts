// How an inventory names a secret: never the value, only where to read it (an environment
// variable or a root-only file). Its own module so every settings type can use it without cycles.
export type SecretRef = { env: string } | { file: string };
