// st-convert: turns text, raw files, IDX images or WAV audio into one HDF5
// byte dataset file for training (layout: docs/dataset-format.md).
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>

#include "core/check.h"
#include "io/convert.h"

namespace po = boost::program_options;

static const char* kUsage = R"(Usage: st-convert --kind KIND --output FILE.h5 [options] INPUT...

Converts files into one HDF5 byte dataset (layout: docs/dataset-format.md) with
the splits "train", "valid" and, if asked, "test".  The file is written as
FILE.h5.tmp and renamed only when complete: on any error no output is left and
an existing FILE.h5 is untouched.  `h5dump -A FILE.h5` shows what it holds.

Kinds:
  text, raw   the input files' bytes as they are, concatenated (with an optional
              separator) into one 1-D stream ("text" and "raw" only differ in the
              name recorded)
  idx         IDX image files as MNIST / Fashion-MNIST ship them, gzip or not,
              into a 2-D [examples, rows*cols*channels] dataset; labels kept
  wav         PCM WAV, 8- or 16-bit, mono or stereo (mixed down), any rate,
              to 8-bit mu-law bytes at --sample-rate, one 1-D stream

Splits: by default the inputs are cut by --valid-fraction / --test-fraction
(a stream: train first, then valid, then test; examples: likewise, after an
optional --shuffle).  With --valid-input (and optionally --test-input) each list
of files makes its own split instead, and the fractions are not used.

Examples:
  st-convert --kind text --output books.h5 --separator '\n\n' books/*.txt
  st-convert --kind idx --output fashion.h5 \
      --input train-images-idx3-ubyte.gz --labels train-labels-idx1-ubyte.gz \
      --valid-input t10k-images-idx3-ubyte.gz --valid-labels t10k-labels-idx1-ubyte.gz
  st-convert --kind wav --sample-rate 8000 --valid-fraction 0.1 --output speech.h5 clips/*.wav

)";

int main(int argc, char** argv) {
  st::ConvertOptions o;
  std::string separator;
  po::options_description options("Options");
  options.add_options()
    ("help,h", "print this help and exit")
    ("kind,k", po::value(&o.kind), "text | raw | idx | wav (required)")
    ("output,o", po::value(&o.output), "the HDF5 file to write (required); its folder must exist")
    ("input,i", po::value(&o.inputs)->multitoken(),
     "input files (also taken from the end of the command line); all of them in fraction mode")
    ("labels", po::value(&o.labels)->multitoken(),
     "idx: labels files (IDX, 1-D), one per --input file, in the same order")
    ("valid-input", po::value(&o.valid_inputs)->multitoken(),
     "files of the valid split (switches from fractions to separate inputs)")
    ("valid-labels", po::value(&o.valid_labels)->multitoken(), "idx: labels of the valid inputs")
    ("test-input", po::value(&o.test_inputs)->multitoken(), "files of the test split (needs --valid-input)")
    ("test-labels", po::value(&o.test_labels)->multitoken(), "idx: labels of the test inputs")
    ("valid-fraction", po::value(&o.valid_fraction)->default_value(0.05, "0.05"),
     "share of the inputs for the valid split (fraction mode)")
    ("test-fraction", po::value(&o.test_fraction)->default_value(0, "0"),
     "share of the inputs for the test split; 0 makes no test split")
    ("separator", po::value(&separator),
     "text/raw: bytes put between consecutive files; C escapes \\n \\t \\r \\0 \\\\ \\xHH are understood")
    ("sample-rate", po::value(&o.sample_rate)->default_value(16000),
     "wav: sample rate (Hz) of the mu-law output; inputs are resampled to it")
    ("shuffle", po::bool_switch(&o.shuffle),
     "idx: shuffle the examples (with --seed) before cutting them by fractions")
    ("seed", po::value(&o.seed)->default_value(1), "seed of every shuffle; the same seed gives the same file")
    ("deflate", po::value(&o.deflate)->default_value(0),
     "0: no compression (fastest reading); 1-9: deflate level (smaller file, slower random reads)")
    ("quiet,q", po::bool_switch(&o.quiet), "no progress lines");
  po::positional_options_description positional;
  positional.add("input", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "st-convert: %s (see --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << options << "\n";
    return 0;
  }
  if (!o.valid_inputs.empty() && (!vm["valid-fraction"].defaulted() || !vm["test-fraction"].defaulted())) {
    std::fprintf(stderr, "st-convert: give either --valid-input or fractions, not both (see --help)\n");
    return 2;
  }
  o.separator = st::unescape(separator);
  try {
    st::convert(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "st-convert: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
