import unittest

from clock import Clock


class ClockTest(unittest.TestCase):
    def test_on_the_hour(self):
        self.assertEqual(str(Clock(8, 0)), "08:00")

    def test_hour_and_minutes_roll_over(self):
        self.assertEqual(str(Clock(25, 160)), "03:40")

    def test_add_minutes(self):
        self.assertEqual(str(Clock(10, 0) + 3), "10:03")

    def test_subtract_across_midnight(self):
        self.assertEqual(str(Clock(0, 3) - 4), "23:59")

    def test_clocks_equal_after_normalising(self):
        self.assertEqual(Clock(10, 60), Clock(11, 0))
        self.assertEqual(str(Clock(10, 60)), "11:00")

    def test_negative_hour_is_equal(self):
        self.assertEqual(Clock(-1, 0), Clock(23, 0))
        self.assertNotEqual(Clock(-1, 0), Clock(1, 0))

    def test_added_clock_equals_built_clock(self):
        self.assertEqual(Clock(23, 59) + 2, Clock(0, 1))
        self.assertEqual(str(Clock(23, 59) + 2), "00:01")

    def test_clock_is_not_none(self):
        self.assertNotEqual(Clock(0, 0), None)
        self.assertEqual(str(Clock(0, 0)), "00:00")
