"""LADD Studio's Streamlit front end: the entry (main.py) and the pieces pages share."""
