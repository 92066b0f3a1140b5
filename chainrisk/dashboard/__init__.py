"""Data shaping for the Streamlit dashboard: frames ready to chart, with units in the column names."""
