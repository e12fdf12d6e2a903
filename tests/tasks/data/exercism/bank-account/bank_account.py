class BankAccount:
    def __init__(self):
        pass

    @property
    def balance(self):
        pass

    def deposit(self, amount):
        pass

    def withdraw(self, amount):
        pass
