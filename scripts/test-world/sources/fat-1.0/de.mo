stand-in message catalogue (de)
