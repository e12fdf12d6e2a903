import unittest

import bank_account


class BankAccountBase(unittest.TestCase):
    def setUp(self):
        self.account = bank_account.BankAccount()


class BankAccountTest(BankAccountBase):
    def test_new_account_is_empty(self):
        self.assertEqual(self.account.balance, 0)

    def test_deposit_then_withdraw(self):
        self.account.deposit(100)
        self.account.withdraw(30)
        self.assertEqual(self.account.balance, 70)


class BankAccountErrorTest(BankAccountBase):
    def test_cannot_withdraw_more_than_balance(self):
        self.account.deposit(10)
        with self.assertRaises(ValueError) as err:
            self.account.withdraw(11)
        self.assertEqual(err.exception.args[0], "insufficient funds")
        self.assertEqual(self.account.balance, 10)

    def test_cannot_deposit_nothing(self):
        with self.assertRaises(ValueError) as err:
            self.account.deposit(0)
        self.assertEqual(err.exception.args[0], "amount must be positive")


if __name__ == "__main__":
    unittest.main()
