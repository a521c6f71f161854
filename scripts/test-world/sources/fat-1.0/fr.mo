stand-in message catalogue (fr)
