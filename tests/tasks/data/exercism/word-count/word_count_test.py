import unittest

from word_count import count_words


class WordCountTest(unittest.TestCase):
    def test_count_one_word(self):
        self.assertEqual(count_words("word"), {"word": 1})

    def test_multiple_occurrences_of_a_word(self):
        self.assertEqual(count_words("one fish two fish"), {"one": 1, "fish": 2, "two": 1})

    def test_ignore_punctuation_and_case(self):
        self.assertEqual(count_words("Go, go: GO!"), {"go": 3})

    def test_with_apostrophes(self):
        self.assertEqual(count_words("don't stop, 'tis fine"), {"don't": 1, "stop": 1, "tis": 1, "fine": 1})

    def test_empty_phrase(self):
        self.assertEqual(count_words(""), {})


if __name__ == "__main__":
    unittest.main()
