#!/usr/bin/env bash
# The media tests make their fixtures (MPEG-2/WMV/FLV/VP9 clips, variable frame rate, rotated phone
# clips) with Debian's ffmpeg and check frame times against its ffprobe (same package).
exec "$(dirname "$0")/ensure_apt_package.sh" ffprobe ffmpeg "the media tests that need ffmpeg"
