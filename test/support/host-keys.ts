/** Two real ed25519 host keys with their `ssh-keygen -l` fingerprints, for tests that need keys decoding accepts. */
export const HOST_KEY_A = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMqpIFcZgho9kBPBcRERloIi0wn6UtiM8C8b7PvFL14p', fingerprint: 'SHA256:Qzsk1Tg0bDCH4An8x/VVN8tA7jshiMPG31ZkW3VzZGk' };
export const HOST_KEY_B = { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMZ1pTiXkUV/6ifoJUm2IYXOjl8MkCrX+S39LBRuQviR', fingerprint: 'SHA256:LAh7P/Y2lvwyCgx4wXBV5FLsv8Vs2ZpZswqzdfpBghE' };
