__all__ = ['ttypes', 'constants', 'Inventory']
