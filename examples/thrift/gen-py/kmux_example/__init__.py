__all__ = ['ttypes', 'constants', 'Catalog']
