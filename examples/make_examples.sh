#!/bin/sh
# Regenerate the example clips: synthetic speech by espeak-ng (its own formant voices, no MBROLA),
# shaped by sox into 16 kHz mono, silence trimmed, peak-normalised to -3 dBFS.
# Usage: sh examples/make_examples.sh   (Debian: apt-get install espeak-ng sox)
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() {  # say NAME "espeak-ng options" "text"
    # shellcheck disable=SC2086
    espeak-ng $2 -w "$tmp/$1.raw.wav" "$3"
    sox "$tmp/$1.raw.wav" -r 16000 -c 1 -b 16 "$tmp/$1.wav" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -3 pad 0.15 0.15
}

say excited "-v en-us+f3 -s 185 -p 80 -a 160" "We actually won! Best day ever!"
say gloomy  "-v en-us -s 130 -p 20 -a 90" "I just miss how it used to be."
say sharp   "-v en-us+m3 -s 175 -p 40 -a 200" "Stop it! I told you not to touch that!"
say level   "-v en-us -s 150 -p 50 -a 120" "Kids are talking by the door."

for name in excited gloomy sharp level; do
    cp "$tmp/$name.wav" "$name.wav"
done
# About 10 s with pauses, for the emotion timeline; OGG/Vorbis keeps it small.
sox "$tmp/level.wav" "$tmp/excited.wav" "$tmp/gloomy.wav" "$tmp/sharp.wav" -C 3 timeline.ogg \
    pad 0 0.3
ls -l ./*.wav ./*.ogg
