#!/usr/bin/env bash
# make_corpus.sh OUT: writes the tokenizer benchmark corpus to OUT, JSON lines {"text": ...}, one
# document (<= 64 KiB) a line, of four kinds interleaved by byte share: C headers (code), Debian
# copyright files and licenses (English), Chinese and Japanese man pages (CJK).
#
# Deterministic: files are taken in byte-sorted order and nothing depends on time or locale, so one
# machine (one set of installed packages) always gives the same file. Documents that are not valid
# UTF-8, or that hold NUL bytes, are dropped. The CJK man pages come from Debian's manpages-zh and
# manpages-ja; they are installed with apt-get when missing and we may (root), else CJK is skipped
# with a warning.
#
# Environment: CORPUS_MB (default 12) is the size to reach, in MiB.
set -euo pipefail
export LC_ALL=C

if [[ $# -ne 1 ]]; then
  echo "usage: make_corpus.sh OUT" >&2
  exit 2
fi
out=$1
target_mb=${CORPUS_MB:-12}

have_cjk() { [[ -d /usr/share/man/zh_CN && -d /usr/share/man/ja ]]; }
if ! have_cjk; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "make_corpus: installing manpages-zh and manpages-ja for the CJK part" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq manpages-zh manpages-ja >/dev/null ||
      echo "make_corpus: warning: apt-get install failed; the corpus will have no CJK" >&2
  else
    echo "make_corpus: warning: manpages-zh/manpages-ja missing and not root; no CJK text" >&2
  fi
fi

lists=$(mktemp -d)
tmp_out="$out.tmp.$$"
trap 'rm -rf "$lists" "$tmp_out"' EXIT
list_files() { find "$@" -type f 2>/dev/null | sort || true; }
list_files /usr/include -name '*.h' >"$lists/code"
{ list_files /usr/share/common-licenses; list_files /usr/share/doc -name copyright; } >"$lists/english"
list_files /usr/share/man/zh_CN /usr/share/man/zh_TW -name '*.gz' >"$lists/chinese"
list_files /usr/share/man/ja -name '*.gz' >"$lists/japanese"

perl - "$target_mb" "$tmp_out" "$out" \
  "code=0.35=$lists/code" "english=0.30=$lists/english" \
  "chinese=0.175=$lists/chinese" "japanese=0.175=$lists/japanese" <<'PERL'
use strict;
use warnings;
use Encode ();

my ($target_mb, $out, $out_name, @kind_args) = @ARGV;
my $target = $target_mb * 1024 * 1024;
my $max_doc = 64 * 1024;

# A kind: its name, byte-share weight, files still to read, documents read but not yet written.
my @kinds;
for my $arg (@kind_args) {
  my ($name, $weight, $list) = split /=/, $arg, 3;
  open my $fh, '<', $list or die "make_corpus: $list: $!\n";
  chomp(my @files = <$fh>);
  push @kinds, {name => $name, weight => $weight, files => \@files, pending => [], bytes => 0,
                docs => 0, dropped => 0};
}

sub read_file {
  my ($path) = @_;
  my $fh;
  if ($path =~ /\.gz$/) {
    open $fh, '-|', 'gzip', '-dc', '--', $path or return undef;
  } else {
    open $fh, '<', $path or return undef;
  }
  binmode $fh;
  local $/;
  my $data = <$fh>;
  close $fh or return undef;
  return $data;
}

# Cuts text into pieces of at most $max_doc bytes, at line ends (always a UTF-8 boundary).
sub split_doc {
  my ($text) = @_;
  my @docs;
  while (length $text > $max_doc) {
    my $cut = rindex($text, "\n", $max_doc - 1) + 1;
    if ($cut <= 0) {
      $cut = $max_doc;
      # No line end: back up to a UTF-8 lead byte.
      $cut-- while $cut > 0 && (ord(substr($text, $cut, 1)) & 0xC0) == 0x80;
    }
    push @docs, substr($text, 0, $cut);
    $text = substr($text, $cut);
  }
  push @docs, $text if length $text;
  return @docs;
}

sub next_doc {
  my ($kind) = @_;
  while (!@{$kind->{pending}} && @{$kind->{files}}) {
    my $data = read_file(shift @{$kind->{files}});
    next unless defined $data && length $data;
    my $copy = $data;
    if ($data =~ /\x00/ || !eval { Encode::decode('UTF-8', $copy, Encode::FB_CROAK); 1 }) {
      $kind->{dropped}++;
      next;
    }
    push @{$kind->{pending}}, split_doc($data);
  }
  return shift @{$kind->{pending}};
}

my %escape = ('"' => '\\"', '\\' => '\\\\', "\n" => '\\n', "\r" => '\\r', "\t" => '\\t',
              "\b" => '\\b', "\f" => '\\f');
open my $ofh, '>', $out or die "make_corpus: $out: $!\n";
binmode $ofh;
my $total = 0;
my @live = @kinds;
while ($total < $target && @live) {
  # The kind furthest below its share goes next, so kinds interleave and keep their mix.
  my ($kind) = sort { $a->{bytes} / $a->{weight} <=> $b->{bytes} / $b->{weight} } @live;
  my $doc = next_doc($kind);
  if (!defined $doc) {
    @live = grep { $_ != $kind } @live;
    next;
  }
  (my $json = $doc) =~ s{([\x00-\x1f"\\])}{$escape{$1} // sprintf('\\u%04x', ord $1)}ge;
  print $ofh '{"text":"', $json, "\"}\n";
  $kind->{bytes} += length $doc;
  $kind->{docs}++;
  $total += length $doc;
}
close $ofh or die "make_corpus: $out: $!\n";

my $docs = 0;
$docs += $_->{docs} for @kinds;
printf "corpus: %s: %.2f MiB of text in %d documents (%d bytes as JSON lines)\n", $out_name, $total / 1048576,
  $docs, -s $out;
for my $kind (@kinds) {
  printf "  %-8s %6.2f MiB %5.1f%% %5d docs, %d files dropped (not UTF-8 or NUL)\n", $kind->{name},
    $kind->{bytes} / 1048576, $total ? 100 * $kind->{bytes} / $total : 0, $kind->{docs}, $kind->{dropped};
}
warn "make_corpus: warning: only $total bytes of text found, below the ${target_mb} MiB target\n"
  if $total < $target;
PERL
mv -f "$tmp_out" "$out"
