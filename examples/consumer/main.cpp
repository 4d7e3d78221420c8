// A minimal host: reads one image with the installed library and prints its module name
// and MD5, as beam_lib:md5/1 would.
#include <codestore/image.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer FILE.beam\n");
    return 2;
  }
  auto image = codestore::image::Image::read_file(argv[1], codestore::image::Strictness::kStrict);
  if (!image) {
    std::fprintf(stderr, "%s\n", image.error().to_string().c_str());
    return 1;
  }
  auto md5 = image->md5();
  if (!md5) {
    std::fprintf(stderr, "%s\n", md5.error().to_string().c_str());
    return 1;
  }
  std::printf("%s %s\n", image->module()->c_str(), codestore::image::md5_hex(*md5).c_str());
  return 0;
}
