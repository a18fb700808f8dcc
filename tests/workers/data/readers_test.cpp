#include "workers/data/readers.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <iterator>
#include <set>

#include "common/error.h"
#include "tests/support/test_support.h"
#include "workers/data/writers.h"

namespace kdx::data {
namespace {

using test::error_of;

TEST(RunneReader, NestedCyrillicEntitiesWithInclusiveEnds) {
  test::TempDir dir;
  auto f = dir.write("train.jsonl",
                     "{\"id\": 3, \"sentences\": \"Полиция Малайзии\\nи мир\", "
                     "\"ners\": [[0, 15, \"ORGANIZATION\"], [8, 15, \"COUNTRY\"]]}\n\n");
  auto docs = read_runne({f}, {"ORGANIZATION", "COUNTRY"});
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].id, "3");
  EXPECT_EQ(docs[0].text.size(), 22u);  // code points, not bytes
  EXPECT_EQ(docs[0].entities[1].start, 8);
  EXPECT_EQ(docs[0].entities[1].end, 16);  // exclusive inside kdx
  EXPECT_EQ(encode_utf8(docs[0].text.substr(8, 8)), "Малайзии");
}

TEST(RunneReader, TextsAndAnswersMergeById) {
  test::TempDir dir;
  auto texts = dir.write(
      "test.jsonl", "{\"id\": 1, \"sentences\": \"abc def\"}\n{\"id\": 2, \"sentences\": \"x\"}\n");
  auto answers =
      dir.write("test_with_answers.jsonl",
                "{\"id\": 2, \"ners\": [[0, 0, \"T\"]]}\n{\"id\": 1, \"ners\": [[4, 6, \"T\"]]}\n");
  auto docs = read_runne({texts, answers});
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0].entities, (std::vector<Entity>{{4, 7, "T"}}));
  EXPECT_EQ(
      error_of([&] { read_runne({answers}); }),
      answers +
          ":1: document id 2 has entities but no text in any of the files (add the file with its "
          "\"sentences\", e.g. test.jsonl)");
}

TEST(RunneReader, Errors) {
  test::TempDir dir;
  auto bad_json = dir.write("a.jsonl", "{\"id\": 1, \"sentences\": \"ab\", \"ners\": []}\n{oops\n");
  EXPECT_EQ(error_of([&] { read_runne({bad_json}); }), bad_json + ":2: not a JSON object");
  auto outside =
      dir.write("b.jsonl", "{\"id\": 1, \"sentences\": \"ab\", \"ners\": [[1, 5, \"T\"]]}\n");
  EXPECT_EQ(error_of([&] { read_runne({outside}); }),
            outside + ":1: entity T [1, 6) lies outside the text (2 characters)");
  auto backwards =
      dir.write("c.jsonl", "{\"id\": 1, \"sentences\": \"abcd\", \"ners\": [[3, 1, \"T\"]]}\n");
  EXPECT_EQ(error_of([&] { read_runne({backwards}); }),
            backwards + ":1: entity T ends (1) before it starts (3)");
  auto unknown =
      dir.write("d.jsonl", "{\"id\": 1, \"sentences\": \"abcd\", \"ners\": [[0, 1, \"ALIEN\"]]}\n");
  EXPECT_EQ(error_of([&] { read_runne({unknown}, {"PERSON"}); }),
            unknown + ":1: unknown entity type 'ALIEN' (known: PERSON)");
  auto latin1 = dir.write("e.jsonl", "{\"id\": 1, \"sentences\": \"caf\xe9\"}\n");
  EXPECT_EQ(error_of([&] { read_runne({latin1}); }),
            latin1 + ":1: invalid UTF-8 at byte 27 (the file must be UTF-8)");
  auto shape =
      dir.write("f.jsonl", "{\"id\": 1, \"sentences\": \"abcd\", \"ners\": [[0, \"T\"]]}\n");
  EXPECT_EQ(error_of([&] { read_runne({shape}); }),
            shape +
                ":1: field \"ners\": each entity must be [start, end, \"TYPE\"] with integer "
                "offsets, got [0,\"T\"]");
}

TEST(BratReader, FolderPairsAndErrors) {
  test::TempDir dir;
  dir.write("set/doc1.txt", "Правовая защищенность граждан\r\n");
  dir.write(
      "set/doc1.ann",
      "T1\tSOC 0 21\tПравовая защищенность\nR1\tGOAL Arg1:T1 Arg2:T2\nT2\tBIN 22 29\tграждан\n");
  auto docs = read_brat({dir.file("set")}, rurebus_types());
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].id, "doc1");
  EXPECT_EQ(docs[0].entities, (std::vector<Entity>{{0, 21, "SOC"}, {22, 29, "BIN"}}));

  dir.write("lonely/x.txt", "text");
  EXPECT_EQ(error_of([&] { read_brat({dir.file("lonely")}); }),
            dir.file("lonely") + "/x.txt: no matching x.ann");
  dir.write("broken/y.txt", "text");
  dir.write("broken/y.ann", "T1\tSOC zero 4\ttext\n");
  EXPECT_EQ(error_of([&] { read_brat({dir.file("broken")}); }),
            dir.file("broken") +
                "/y.ann:1: cannot parse offsets 'SOC zero 4' (expected '<type> <start> <end>')");
  dir.write("notabs/z.txt", "text");
  dir.write("notabs/z.ann", "T1 SOC 0 4 text\n");
  EXPECT_EQ(error_of([&] { read_brat({dir.file("notabs")}); }),
            dir.file("notabs") +
                "/z.ann:1: cannot parse brat line (expected 'T<id><TAB><type> <start> "
                "<end><TAB><text>'): T1 SOC 0 4 text");
  dir.write("enc/w.txt", "caf\xe9");
  dir.write("enc/w.ann", "");
  EXPECT_EQ(error_of([&] { read_brat({dir.file("enc")}); }),
            dir.file("enc") + "/w.txt: invalid UTF-8 at byte 3 (the file must be UTF-8)");
  dir.write("type/v.txt", "text");
  dir.write("type/v.ann", "T1\tFOO 0 4\ttext\n");
  EXPECT_EQ(
      error_of([&] { read_brat({dir.file("type")}, rurebus_types()); }),
      dir.file("type") +
          "/v.ann:1: unknown entity type 'FOO' (known: ACT, BIN, CMP, ECO, INST, MET, QUA, SOC)");
}

TEST(ConllReader, BioToSpans) {
  test::TempDir dir;
  auto f = dir.write("x.conll", "Иван\tB-PER\nПетров\tI-PER\nв\tO\nМоскве\tB-LOC\n\nОн\tO\n");
  auto docs = read_conll({f});
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(encode_utf8(docs[0].text), "Иван Петров в Москве");
  EXPECT_EQ(docs[0].entities, (std::vector<Entity>{{0, 11, "PER"}, {14, 20, "LOC"}}));
  auto bad = dir.write("y.conll", "a\tX-PER\n");
  EXPECT_EQ(error_of([&] { read_conll({bad}); }),
            bad + ":1: tag 'X-PER' is not O, B-TYPE or I-TYPE");
}

TEST(ConllReader, UnknownTypeNamesTheLineAndTheKnownTypes) {
  test::TempDir dir;
  auto f = dir.write("x.conll", "Иван\tB-PER\n\nAcme\tB-ORG\nInc\tI-ORG\n");
  EXPECT_EQ(error_of([&] {
              read_conll({f}, {"LOC", "PER"});
            }),
            f + ":3: unknown entity type 'ORG' (known: LOC, PER)");
  EXPECT_EQ(read_conll({f}).size(), 2u);  // no type list: any type
  EXPECT_EQ(error_of([&] { read_dataset("conll", {f}, {"PER"}); }),
            f + ":3: unknown entity type 'ORG' (known: PER)");
}

// The classes a run has (a teacher's types.json) replace the dataset's own list; a long list
// is shortened in the message.
TEST(Readers, TypeListsOfTheRunAndShortenedMessages) {
  test::TempDir dir;
  std::set<std::string> many;
  for (char c = 'A'; c < 'A' + 15; ++c) many.insert(std::string("T") + c);
  EXPECT_EQ(known_types(many), "TA, TB, TC, TD, TE, TF, TG, TH, TI, TJ, ... (15 in all)");
  std::set<std::string> twelve(many.begin(), std::next(many.begin(), 12));
  EXPECT_EQ(known_types(twelve), "TA, TB, TC, TD, TE, TF, TG, TH, TI, TJ, TK, TL");
  dir.write("ners.txt", "PERSON\nCITY\n");
  auto f = dir.write("train.jsonl",
                     "{\"id\": 1, \"sentences\": \"ab\", \"ners\": [[0, 0, \"CITY\"]]}\n");
  EXPECT_EQ(read_dataset("runne", {f}).size(), 1u);  // ners.txt has CITY
  EXPECT_EQ(error_of([&] { read_dataset("runne", {f}, many); }),
            f + ":1: unknown entity type 'CITY' (known: TA, TB, TC, TD, TE, TF, TG, TH, TI, TJ, "
                "... (15 in all))");
  dir.write("set/a.txt", "text");
  dir.write("set/a.ann", "T1\tSOC 0 4\ttext\n");
  EXPECT_EQ(error_of([&] { read_dataset("rurebus", {dir.file("set")}, {"ACT"}); }),
            dir.file("set") + "/a.ann:1: unknown entity type 'SOC' (known: ACT)");
}

// read_input refuses anything but a regular file: /dev/zero would never end, a FIFO without
// a writer would block the read.
TEST(Readers, DeviceOrFifoIsNotADataFile) {
  test::TempDir dir;
  std::string fifo = dir.file("data.jsonl");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
  const std::string zero = "/dev/zero: not a regular file (a character device)";
  EXPECT_EQ(error_of([&] { read_runne({"/dev/zero"}); }), zero);
  EXPECT_EQ(error_of([&] { read_conll({"/dev/zero"}); }), zero);
  EXPECT_EQ(error_of([&] { read_dataset("rurebus", {"/dev/zero"}); }), zero);
  EXPECT_EQ(error_of([&] { read_texts("/dev/zero"); }), zero);
  EXPECT_EQ(error_of([&] { read_runne({fifo}); }), fifo + ": not a regular file (a FIFO)");
  EXPECT_EQ(error_of([&] { read_dataset("conll", {fifo}); }),
            fifo + ": not a regular file (a FIFO)");
  EXPECT_EQ(error_of([&] { read_texts(fifo); }), fifo + ": not a regular file (a FIFO)");
  // A FIFO inside a brat folder, and as the ners.txt beside a RuNNE file.
  dir.write("set/a.ann", "");
  ASSERT_EQ(::mkfifo(dir.file("set/a.txt").c_str(), 0644), 0);
  EXPECT_EQ(error_of([&] { read_brat({dir.file("set")}); }),
            dir.file("set/a.txt") + ": not a regular file (a FIFO)");
  test::TempDir other;
  auto f = other.write("train.jsonl", "{\"id\": 1, \"sentences\": \"ab\"}\n");
  ASSERT_EQ(::mkfifo(other.file("ners.txt").c_str(), 0644), 0);
  EXPECT_EQ(error_of([&] { read_dataset("runne", {f}); }),
            other.file("ners.txt") + ": not a regular file (a FIFO)");
}

TEST(Writers, RunneRoundTrip) {
  test::TempDir dir;
  std::vector<Document> docs = {{"5", decode_utf8("abc def", "t"), {{4, 7, "T"}}}};
  write_runne(docs, dir.file("p.jsonl"));
  EXPECT_EQ(test::slurp(dir.file("p.jsonl")), "{\"id\":5,\"ners\":[[4,6,\"T\"]]}\n");
  auto back = read_runne({dir.file("p.jsonl")}, {}, false);
  EXPECT_EQ(back[0].entities, docs[0].entities);
}

}  // namespace
}  // namespace kdx::data
