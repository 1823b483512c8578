"""Circuit targets: IBM (qiskit), IonQ (braket), Quantinuum (pytket)."""
